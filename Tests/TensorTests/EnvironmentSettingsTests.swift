import Foundation
@testable import Tensor
import Testing

@Suite("Environment settings")
struct EnvironmentSettingsTests {
    @Test("values the engine would ignore are refused, naming the variable; good ones and none pass")
    func validate() throws {
        try EnvironmentSettings.validate([:])
        try EnvironmentSettings.validate(["TINYSEEK_THREADS": "2", "TINYSEEK_PREFETCH": "line"])
        try EnvironmentSettings.validate(["TINYSEEK_PREFETCH": "page"])
        for (variable, value) in [("TINYSEEK_THREADS", "0"), ("TINYSEEK_THREADS", "two"), ("TINYSEEK_PREFETCH", "LINE")] {
            #expect(throws: EnvironmentSettings.InvalidValue.self, "\(variable)=\(value)") {
                try EnvironmentSettings.validate([variable: value])
            }
        }
        let error = EnvironmentSettings.InvalidValue(variable: "TINYSEEK_PREFETCH", value: "x", expected: "\"page\" or \"line\"")
        #expect(throws: error) { try EnvironmentSettings.validate(["TINYSEEK_PREFETCH": "x"]) }
        #expect(error.description == "TINYSEEK_PREFETCH=\"x\" is not valid: expected \"page\" or \"line\"")
    }
}
