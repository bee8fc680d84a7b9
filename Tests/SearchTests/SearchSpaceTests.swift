import Foundation
import Randomness
@testable import Search
import Testing

@Suite struct SearchSpaceTests {
    static let yaml = """
    parameters:
      kernel_size: {type: categorical, choices: [3, 5]}
      groups: {type: categorical, choices: [1, 2, 4, 8]}
      channels: {type: int, low: 24, high: 96, step: 8}
      width: {type: int, low: 220, high: 320, step: 4}
    """

    @Test func decodesTheYAMLExample() throws {
        let space = try SearchSpace.decode(yaml: Self.yaml)
        #expect(space.names == ["channels", "groups", "kernel_size", "width"])
        #expect(space["kernel_size"]?.distribution == .categorical([.int(3), .int(5)]))
        #expect(space["channels"]?.distribution == .int(low: 24, high: 96, step: 8))
        // 2 * 4 * 10 * 26 configurations.
        #expect(space.cardinality == .finite(2 * 4 * 10 * 26))
    }

    @Test func decodesJSONAndRoundTrips() throws {
        let json = #"{"parameters": {"lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": true}, "op": {"type": "categorical", "choices": ["conv", "pool"]}}}"#
        let space = try SearchSpace.decode(json: Data(json.utf8))
        #expect(space["lr"]?.distribution == .float(low: 0.0001, high: 0.1, log: true))
        #expect(space.cardinality == .infinite)
        let again = try SearchSpace.decode(json: Data(space.jsonString().utf8))
        #expect(again == space)
    }

    @Test func yamlErrorsNameTheKeyPathAndExpectation() {
        let wrongType = "parameters:\n  channels: {type: int, low: abc, high: 96}\n"
        #expect(throws: SearchSpaceError.self) { try SearchSpace.decode(yaml: wrongType) }
        do {
            _ = try SearchSpace.decode(yaml: wrongType)
        } catch {
            guard case .invalidField(let path, let expected, _) = error else { Issue.record("got \(error)"); return }
            #expect(path == "parameters.channels.low")
            #expect(expected == "an integer")
        }
        do {
            _ = try SearchSpace.decode(yaml: "parameters:\n  op: {type: choice, choices: [a]}\n")
            Issue.record("expected an error")
        } catch {
            guard case .invalidField(let path, _, let found) = error else { Issue.record("got \(error)"); return }
            #expect(path == "parameters.op.type")
            #expect(found == "'choice'")
        }
        do {
            _ = try SearchSpace.decode(yaml: "params: {}\n")
            Issue.record("expected an error")
        } catch {
            guard case .invalidField(let path, _, _) = error else { Issue.record("got \(error)"); return }
            #expect(path == "parameters")
        }
    }

    @Test func validationErrorsNameTheParameter() {
        func failure(_ distribution: Distribution) -> SearchSpaceError? {
            do { _ = try SearchSpace(["p": distribution]); return nil } catch { return error }
        }
        #expect(failure(.categorical([])) == .emptyChoices(parameter: "p"))
        #expect(failure(.categorical([.int(1), .int(1)])) == .duplicateChoices(parameter: "p"))
        #expect(failure(.int(low: 5, high: 1)) == .lowAboveHigh(parameter: "p", low: "5", high: "1"))
        #expect(failure(.float(low: 0, high: 1, log: true)) == .logWithNonPositiveLow(parameter: "p", low: "0.0"))
        #expect(failure(.int(low: 0, high: 10, step: 3)) == .stepDoesNotDivideRange(parameter: "p", low: "0", high: "10", step: "3"))
        #expect(failure(.int(low: 0, high: 10, step: 0)) == .nonPositiveStep(parameter: "p", step: "0"))
        #expect(failure(.float(low: 0, high: 1, step: 0.3)) == .stepDoesNotDivideRange(parameter: "p", low: "0.0", high: "1.0", step: "0.3"))
        #expect(failure(.float(low: 0, high: 1, step: 0.25)) == nil)
        #expect(throws: SearchSpaceError.emptySpace) { try SearchSpace([SearchParameter]()) }
        #expect(throws: SearchSpaceError.unknownParent(parameter: "c", parent: "nope")) {
            try SearchSpace([SearchParameter("c", .int(low: 0, high: 1), condition: .init(parent: "nope", values: [.int(0)]))])
        }
        #expect(throws: SearchSpaceError.conditionValueNotInParent(parameter: "c", parent: "b", value: .string("x"))) {
            try SearchSpace([SearchParameter("b", .categorical([.string("a")])),
                             SearchParameter("c", .int(low: 0, high: 1), condition: .init(parent: "b", values: [.string("x")]))])
        }
    }

    static func conditionalSpace() throws -> SearchSpace {
        try SearchSpace([
            SearchParameter("block", .categorical([.string("mbconv"), .string("plain")])),
            SearchParameter("expansion", .int(low: 2, high: 6, step: 2), condition: .init(parent: "block", values: [.string("mbconv")])),
            SearchParameter("se", .categorical([.int(0), .int(1)]), condition: .init(parent: "expansion", values: [.int(4), .int(6)])),
            SearchParameter("kernel", .categorical([.int(3), .int(5)])),
        ])
    }

    @Test func conditionalCardinalityAndGridPoints() throws {
        let space = try Self.conditionalSpace()
        // block=plain: 1; block=mbconv: expansion 2 (1) + 4 (2 se) + 6 (2 se) = 5. Times 2 kernels.
        #expect(space.cardinality == .finite(12))
        let points = (0..<12).map { space.gridPoint(at: $0)! }
        #expect(Set(points).count == 12)
        for point in points { #expect(throws: Never.self) { try space.validate(point) } }
        #expect(space.gridPoint(at: 12) == nil)
        #expect(points.contains(["block": .string("plain"), "kernel": .int(5)]))
        #expect(throws: SearchSpaceError.unexpectedParameter(name: "expansion")) {
            try space.validate(["block": .string("plain"), "kernel": .int(5), "expansion": .int(2)])
        }
        #expect(throws: SearchSpaceError.missingParameter(name: "se")) {
            try space.validate(["block": .string("mbconv"), "kernel": .int(5), "expansion": .int(4)])
        }
    }

    @Test func unitEncodingRoundTrips() {
        let distributions: [Distribution] = [
            .int(low: 24, high: 96, step: 8), .int(low: 1, high: 1000, log: true), .float(low: 0, high: 1, step: 0.25),
            .categorical([.string("a"), .string("b"), .string("c")]),
        ]
        for distribution in distributions {
            for value in distribution.allValues ?? [] {
                #expect(distribution.fromUnit(distribution.toUnit(value)) == value, "\(distribution) \(value)")
            }
        }
        var rng = SplitMix64(seed: 1)
        let log = Distribution.float(low: 1e-4, high: 1, log: true)
        for _ in 0..<100 { #expect(log.contains(log.sampleUniform(using: &rng))) }
    }
}
