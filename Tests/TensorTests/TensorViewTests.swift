import Tensor
import Testing

@Suite("Tensor views share storage; bad shapes throw")
struct TensorViewTests {
    let t: Tensor  // (3, 4), t[i, j] = 10·i + j

    init() throws {
        t = try Tensor(shape: [3, 4], scalars: (0..<3).flatMap { i in (0..<4).map { Float(10 * i + $0) } })
    }

    @Test("rows(_:) is a window of the same storage")
    func rows() {
        let v = t.rows(1..<3)
        #expect(v.storage === t.storage)
        #expect(v.shape == [2, 4] && v.offset == 4)
        #expect(v.scalars == [10, 11, 12, 13, 20, 21, 22, 23])
        v[0, 1] = -1
        #expect(t[1, 1] == -1, "a write through the view is visible in the parent")
        #expect(t.rows(3..<3).count == 0)
    }

    @Test("row(_:) drops dimension 0 and shares storage")
    func row() {
        let r = t.row(2)
        #expect(r.storage === t.storage)
        #expect(r.shape == [4] && r.offset == 8 && r.pointer == t.pointer + 8)
        r[3] = 99
        #expect(t[2, 3] == 99)
        // A row of a row: element offsets compose.
        let cube = Tensor(zeros: [2, 3, 4])
        #expect(cube.row(1).row(2).offset == 1 * 12 + 2 * 4)
    }

    @Test("reshaped(_:) is a view; a wrong element count throws shapeMismatch")
    func reshaped() throws {
        let flat = try t.reshaped([12])
        #expect(flat.storage === t.storage && flat.offset == 0)
        flat[5] = 55
        #expect(t[1, 1] == 55)
        let sub = try t.row(1).reshaped([2, 2])
        #expect(sub.offset == 4 && sub[1, 0] == 12)
        #expect(throws: TensorError.shapeMismatch(expected: [5, 2], got: [3, 4])) { try t.reshaped([5, 2]) }
        #expect(throws: TensorError.self) { try t.reshaped([-3, -4]) }
    }

    @Test("init(shape:scalars:) rejects a count that does not match the shape")
    func initMismatch() throws {
        #expect(throws: TensorError.shapeMismatch(expected: [2, 3], got: [5])) {
            try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5])
        }
        #expect(throws: TensorError.self) { try Tensor(shape: [-1], scalars: []) }
        let empty = try Tensor(shape: [0, 3], scalars: [])
        #expect(empty.count == 0 && empty.scalars.isEmpty)
        let scalar = try Tensor(shape: [], scalars: [7])
        #expect(scalar.count == 1 && scalar[0] == 7)
    }

    @Test("copy() has its own storage")
    func copy() {
        let c = t.copy()
        #expect(c.storage !== t.storage && c.scalars == t.scalars)
        c[0] = 123
        #expect(t[0] == 0)
    }
}
