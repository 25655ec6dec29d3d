import Foundation

/// Maps a log10 data domain [10^loDecade, 10^hiDecade] to a pixel range, for roofline axes where
/// a power-of-ten step is the same distance everywhere (the roofline's slope is then 45°
/// whenever both axes have equal decade sizes).
struct LogScale {
    var loDecade: Int
    var hiDecade: Int
    /// Pixel positions of 10^loDecade and 10^hiDecade (hi may be above lo, as on a y axis).
    var from: Double
    var to: Double

    /// The smallest decade range holding every positive finite value in `values`, at least `minDecades` wide.
    init(covering values: [Double], minDecades: Int = 2, from: Double, to: Double) {
        let logs = values.filter { $0 > 0 && $0.isFinite }.map(log10)
        var lo = Int((logs.min() ?? 0).rounded(.down))
        var hi = Int((logs.max() ?? 1).rounded(.up))
        if hi <= lo { hi = lo + 1 }
        while hi - lo < minDecades { lo -= 1 }
        loDecade = lo
        hiDecade = hi
        self.from = from
        self.to = to
    }

    var lo: Double { pow(10, Double(loDecade)) }
    var hi: Double { pow(10, Double(hiDecade)) }

    /// Pixel position of `value`; values outside the domain (or not positive) are clamped to it.
    func callAsFunction(_ value: Double) -> Double {
        let l = value > 0 && value.isFinite ? log10(value) : Double(loDecade)
        let t = (min(max(l, Double(loDecade)), Double(hiDecade)) - Double(loDecade)) / Double(hiDecade - loDecade)
        return from + t * (to - from)
    }

    func contains(_ value: Double) -> Bool { value >= lo && value <= hi && value.isFinite }

    var decades: [Int] { Array(loDecade...hiDecade) }

    /// Positions of 2·10^k ... 9·10^k inside the domain, for minor ticks.
    var minorTicks: [Double] {
        decades.dropLast().flatMap { k in (2...9).map { Double($0) * pow(10, Double(k)) } }
    }

    /// "0.001" ... "10000" for 10^-3 ... 10^4 (what readers scan fastest), else "1e-5", "1e6".
    static func label(decade k: Int) -> String {
        switch k {
        case 0...4: return "1" + String(repeating: "0", count: k)
        case -3 ..< 0: return "0." + String(repeating: "0", count: -k - 1) + "1"
        default: return "1e\(k)"
        }
    }
}

/// Maps [0, max] to a pixel range with "nice" ticks (1, 2 or 5 × 10^k steps).
struct LinearScale {
    var max: Double
    var step: Double
    var from: Double
    var to: Double

    /// A domain from 0 to a nice number at or above `maximum`, with about `ticks` intervals.
    init(maximum: Double, ticks: Int = 5, from: Double, to: Double) {
        let m = maximum > 0 && maximum.isFinite ? maximum : 1
        let raw = m / Double(Swift.max(ticks, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        self.step = step
        self.max = (m / step).rounded(.up) * step
        self.from = from
        self.to = to
    }

    func callAsFunction(_ value: Double) -> Double {
        let v = value.isFinite ? Swift.min(Swift.max(value, 0), max) : 0
        return from + v / max * (to - from)
    }

    var ticks: [Double] {
        let n = Int((max / step).rounded())
        return (0...n).map { Double($0) * step }
    }

    /// A tick label with as many decimals as the step needs (0.25 -> 2, 0.5 -> 1, 20 -> 0).
    func label(_ value: Double) -> String {
        let decimals = (0...6).first { d in
            let scaled = step * pow(10, Double(d))
            return abs(scaled - scaled.rounded()) < 1e-6 * Swift.max(scaled, 1)
        } ?? 6
        return String(format: "%.\(decimals)f", value)
    }
}
