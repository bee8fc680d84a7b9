import Foundation
import Yams

/// Why a search space (or an assignment of its parameters) is not usable. Every case names
/// the parameter or key path and what was expected.
public enum SearchSpaceError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyChoices(parameter: String)
    case duplicateChoices(parameter: String)
    case lowAboveHigh(parameter: String, low: String, high: String)
    case nonPositiveStep(parameter: String, step: String)
    case logWithNonPositiveLow(parameter: String, low: String)
    case logWithStep(parameter: String)
    case stepDoesNotDivideRange(parameter: String, low: String, high: String, step: String)
    case nonFiniteBound(parameter: String)
    case emptySpace
    case duplicateParameter(name: String)
    case unknownParent(parameter: String, parent: String)
    case conditionValueNotInParent(parameter: String, parent: String, value: ParameterValue)
    case conditionCycle(parameter: String)
    /// A decoded file's field at `path` did not hold what was expected.
    case invalidField(path: String, expected: String, found: String)
    /// A trial's assignment lacks an active parameter, has an inactive or unknown one, or a
    /// value outside its distribution.
    case missingParameter(name: String)
    case unexpectedParameter(name: String)
    case valueOutOfDistribution(parameter: String, value: ParameterValue)

    public var description: String {
        switch self {
        case .emptyChoices(let p): "parameter '\(p)': categorical choices are empty; expected at least one choice"
        case .duplicateChoices(let p): "parameter '\(p)': categorical choices repeat a value; expected distinct choices"
        case .lowAboveHigh(let p, let low, let high): "parameter '\(p)': low \(low) is above high \(high); expected low <= high"
        case .nonPositiveStep(let p, let step): "parameter '\(p)': step \(step); expected a positive step"
        case .logWithNonPositiveLow(let p, let low): "parameter '\(p)': log scale with low \(low); expected low > 0"
        case .logWithStep(let p): "parameter '\(p)': log scale cannot have a step (other than 1 for int)"
        case .stepDoesNotDivideRange(let p, let low, let high, let step):
            "parameter '\(p)': step \(step) does not divide high - low (\(high) - \(low)); expected a step that lands on high"
        case .nonFiniteBound(let p): "parameter '\(p)': bounds must be finite numbers"
        case .emptySpace: "the search space has no parameters; expected at least one"
        case .duplicateParameter(let name): "parameter '\(name)' is declared twice"
        case .unknownParent(let p, let parent): "parameter '\(p)': condition refers to '\(parent)', which is not a parameter"
        case .conditionValueNotInParent(let p, let parent, let value):
            "parameter '\(p)': condition value \(value) is not a value of '\(parent)'"
        case .conditionCycle(let p): "parameter '\(p)': conditions form a cycle"
        case .invalidField(let path, let expected, let found): "\(path): expected \(expected), found \(found)"
        case .missingParameter(let name): "parameter '\(name)' is active but has no value"
        case .unexpectedParameter(let name): "parameter '\(name)' is unknown or inactive in this assignment"
        case .valueOutOfDistribution(let p, let value): "parameter '\(p)': value \(value) is outside its distribution"
        }
    }
}

/// How many distinct configurations a space holds.
public enum Cardinality: Hashable, Sendable, CustomStringConvertible {
    /// A finite count (saturated at `Int.max` for astronomically large spaces).
    case finite(Int)
    case infinite

    public var description: String {
        switch self {
        case .finite(let n): "\(n)"
        case .infinite: "infinite"
        }
    }
}

/// A parameter is active only when its parent takes one of the given values (for example
/// `expansion` only when `block` is `mbconv`).
public struct ParameterCondition: Hashable, Sendable, Codable {
    public var parent: String
    public var values: [ParameterValue]

    public init(parent: String, values: [ParameterValue]) {
        self.parent = parent
        self.values = values
    }

    enum CodingKeys: String, CodingKey { case parent, values }

    public init(from decoder: any Decoder) throws {
        let path = keyPath(decoder.codingPath)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard let parent = try? container.decode(String.self, forKey: .parent) else {
            throw SearchSpaceError.invalidField(path: path + ".parent", expected: "the name of another parameter", found: "missing or not a string")
        }
        guard var list = try? container.nestedUnkeyedContainer(forKey: .values) else {
            throw SearchSpaceError.invalidField(path: path + ".values", expected: "a list of the parent's values", found: "missing or not a list")
        }
        var values: [ParameterValue] = []
        while !list.isAtEnd {
            if let i = try? list.decode(Int.self) { values.append(.int(i)) }
            else if let d = try? list.decode(Double.self) { values.append(.double(d)) }
            else if let s = try? list.decode(String.self) { values.append(.string(s)) }
            else { throw SearchSpaceError.invalidField(path: path + ".values", expected: "numbers or strings", found: "another kind of value") }
        }
        self.parent = parent
        self.values = values
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(parent, forKey: .parent)
        var list = container.nestedUnkeyedContainer(forKey: .values)
        for value in values {
            switch value {
            case .int(let v): try list.encode(v)
            case .double(let v): try list.encode(v)
            case .string(let v): try list.encode(v)
            }
        }
    }
}

/// A named search-space parameter.
public struct SearchParameter: Hashable, Sendable {
    public var name: String
    public var distribution: Distribution
    public var condition: ParameterCondition?

    public init(_ name: String, _ distribution: Distribution, condition: ParameterCondition? = nil) {
        self.name = name
        self.distribution = distribution
        self.condition = condition
    }
}

/// A validated set of named parameters, in a canonical order: parents before their
/// children, otherwise by name, so that every process enumerates it the same way.
public struct SearchSpace: Hashable, Sendable {
    public let parameters: [SearchParameter]
    private let indexByName: [String: Int]

    public init(_ parameters: [SearchParameter]) throws(SearchSpaceError) {
        if parameters.isEmpty { throw .emptySpace }
        var byName: [String: SearchParameter] = [:]
        for parameter in parameters {
            if byName[parameter.name] != nil { throw .duplicateParameter(name: parameter.name) }
            try parameter.distribution.validate(name: parameter.name)
            byName[parameter.name] = parameter
        }
        for parameter in parameters {
            guard let condition = parameter.condition else { continue }
            guard let parent = byName[condition.parent] else {
                throw .unknownParent(parameter: parameter.name, parent: condition.parent)
            }
            for value in condition.values where !parent.distribution.contains(value) {
                throw .conditionValueNotInParent(parameter: parameter.name, parent: condition.parent, value: value)
            }
        }
        // Topological order with alphabetical tie-break.
        var ordered: [SearchParameter] = []
        var placed = Set<String>()
        var remaining = parameters.sorted { $0.name < $1.name }
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { p in p.condition.map { placed.contains($0.parent) } ?? true }) else {
                throw .conditionCycle(parameter: remaining[0].name)
            }
            placed.insert(remaining[next].name)
            ordered.append(remaining.remove(at: next))
        }
        self.parameters = ordered
        self.indexByName = Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($1.name, $0) })
    }

    /// Convenience for spaces without conditions, written as a dictionary literal.
    public init(_ distributions: [String: Distribution]) throws(SearchSpaceError) {
        try self.init(distributions.map { SearchParameter($0.key, $0.value) })
    }

    public subscript(name: String) -> SearchParameter? {
        indexByName[name].map { parameters[$0] }
    }

    public var names: [String] { parameters.map(\.name) }

    /// Whether the space has conditional parameters.
    public var isConditional: Bool { parameters.contains { $0.condition != nil } }

    /// Whether `parameter` is active given the values chosen so far.
    public func isActive(_ parameter: SearchParameter, in assignment: [String: ParameterValue]) -> Bool {
        guard let condition = parameter.condition else { return true }
        guard let parentValue = assignment[condition.parent] else { return false }
        return condition.values.contains(parentValue)
    }

    /// Keeps only the active parameters of `assignment` (a sampler may propose values for
    /// every parameter; the inactive ones are dropped here).
    public func activeAssignment(_ assignment: [String: ParameterValue]) -> [String: ParameterValue] {
        var result: [String: ParameterValue] = [:]
        for parameter in parameters where isActive(parameter, in: result) {
            if let value = assignment[parameter.name] { result[parameter.name] = value }
        }
        return result
    }

    /// Checks an assignment holds exactly the active parameters, each within its distribution.
    public func validate(_ assignment: [String: ParameterValue]) throws(SearchSpaceError) {
        var seen: [String: ParameterValue] = [:]
        for parameter in parameters where isActive(parameter, in: seen) {
            guard let value = assignment[parameter.name] else { throw .missingParameter(name: parameter.name) }
            guard parameter.distribution.contains(value) else {
                throw .valueOutOfDistribution(parameter: parameter.name, value: value)
            }
            seen[parameter.name] = value
        }
        for name in assignment.keys.sorted() where seen[name] == nil {
            throw .unexpectedParameter(name: name)
        }
    }

    /// A uniformly random assignment of the active parameters.
    public func sampleUniform<G: RandomNumberGenerator>(using rng: inout G) -> [String: ParameterValue] {
        var result: [String: ParameterValue] = [:]
        for parameter in parameters where isActive(parameter, in: result) {
            result[parameter.name] = parameter.distribution.sampleUniform(using: &rng)
        }
        return result
    }

    // MARK: cardinality and grid enumeration

    private func children(of name: String, when value: ParameterValue) -> [SearchParameter] {
        parameters.filter { $0.condition?.parent == name && $0.condition!.values.contains(value) }
    }

    private var roots: [SearchParameter] { parameters.filter { $0.condition == nil } }

    /// Count of configurations under one parameter (itself and the children it activates).
    private func subtreeCount(_ parameter: SearchParameter) -> Int? {
        guard let values = parameter.distribution.allValues else { return nil }
        var total = 0
        for value in values {
            guard let count = productCount(children(of: parameter.name, when: value)) else { return nil }
            total = saturatingAdd(total, count)
        }
        return total
    }

    private func productCount(_ group: [SearchParameter]) -> Int? {
        var product = 1
        for parameter in group {
            guard let count = subtreeCount(parameter) else { return nil }
            product = saturatingMultiply(product, count)
        }
        return product
    }

    /// How many distinct assignments of active parameters exist.
    public var cardinality: Cardinality {
        productCount(roots).map { .finite($0) } ?? .infinite
    }

    /// The `index`-th configuration of a finite space, in a fixed mixed-radix order
    /// (index 0..<cardinality); nil for an infinite space or an index out of range.
    public func gridPoint(at index: Int) -> [String: ParameterValue]? {
        guard case .finite(let total) = cardinality, index >= 0, index < total else { return nil }
        var result: [String: ParameterValue] = [:]
        decode(index, group: roots, into: &result)
        return result
    }

    private func decode(_ index: Int, group: [SearchParameter], into result: inout [String: ParameterValue]) {
        var rest = index
        for parameter in group {
            let count = subtreeCount(parameter)!
            decode(rest % count, parameter: parameter, into: &result)
            rest /= count
        }
    }

    private func decode(_ index: Int, parameter: SearchParameter, into result: inout [String: ParameterValue]) {
        var rest = index
        for value in parameter.distribution.allValues! {
            let group = children(of: parameter.name, when: value)
            let count = productCount(group)!
            if rest < count {
                result[parameter.name] = value
                decode(rest, group: group, into: &result)
                return
            }
            rest -= count
        }
    }

    // MARK: YAML / JSON

    /// Decodes a space from YAML (JSON is valid YAML too):
    ///
    ///     parameters:
    ///       kernel_size: {type: categorical, choices: [3, 5]}
    ///       channels: {type: int, low: 24, high: 96, step: 8}
    ///       expansion: {type: int, low: 2, high: 6, condition: {parent: block, values: [mbconv]}}
    public static func decode(yaml: String) throws(SearchSpaceError) -> SearchSpace {
        do {
            return try YAMLDecoder().decode(SearchSpace.self, from: yaml)
        } catch let error as SearchSpaceError {
            throw error
        } catch DecodingError.dataCorrupted(let context) where context.underlyingError is SearchSpaceError {
            // Yams wraps errors thrown while decoding; ours already name the key path.
            throw context.underlyingError as! SearchSpaceError
        } catch {
            throw .invalidField(path: "(document)", expected: "a YAML mapping with a 'parameters' mapping", found: describeFailure(error))
        }
    }

    public static func decode(json: Data) throws(SearchSpaceError) -> SearchSpace {
        do {
            return try JSONDecoder().decode(SearchSpace.self, from: json)
        } catch let error as SearchSpaceError {
            throw error
        } catch {
            throw .invalidField(path: "(document)", expected: "a JSON object with a 'parameters' object", found: describeFailure(error))
        }
    }

    /// The space as JSON, e.g. to keep in a study's attributes.
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try! encoder.encode(self) // encoding plain numbers and strings cannot fail
        return String(decoding: data, as: UTF8.self)
    }
}

private func saturatingAdd(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? .max : sum
}

private func saturatingMultiply(_ a: Int, _ b: Int) -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? .max : product
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension SearchSpace: Codable {
    private struct Entry: Codable {
        var distribution: Distribution
        var condition: ParameterCondition?

        init(distribution: Distribution, condition: ParameterCondition?) {
            self.distribution = distribution
            self.condition = condition
        }

        init(from decoder: any Decoder) throws {
            distribution = try Distribution(from: decoder)
            let container = try decoder.container(keyedBy: DynamicKey.self)
            condition = try container.decodeIfPresent(ParameterCondition.self, forKey: DynamicKey(stringValue: "condition"))
        }

        func encode(to encoder: any Encoder) throws {
            try distribution.encode(to: encoder)
            var container = encoder.container(keyedBy: DynamicKey.self)
            try container.encodeIfPresent(condition, forKey: DynamicKey(stringValue: "condition"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let root = try decoder.container(keyedBy: DynamicKey.self)
        let key = DynamicKey(stringValue: "parameters")
        guard root.contains(key) else {
            throw SearchSpaceError.invalidField(path: "parameters", expected: "a mapping of parameter names to distributions", found: "nothing (the key is missing)")
        }
        let container: KeyedDecodingContainer<DynamicKey>
        do { container = try root.nestedContainer(keyedBy: DynamicKey.self, forKey: key) } catch {
            throw SearchSpaceError.invalidField(path: "parameters", expected: "a mapping of parameter names to distributions", found: describeFailure(error))
        }
        var parameters: [SearchParameter] = []
        for name in container.allKeys {
            let entry: Entry
            do { entry = try container.decode(Entry.self, forKey: name) } catch let error as SearchSpaceError {
                throw error
            } catch {
                throw SearchSpaceError.invalidField(path: "parameters.\(name.stringValue)", expected: "a mapping with 'type' and its fields", found: describeFailure(error))
            }
            parameters.append(SearchParameter(name.stringValue, entry.distribution, condition: entry.condition))
        }
        try self.init(parameters)
    }

    public func encode(to encoder: any Encoder) throws {
        var root = encoder.container(keyedBy: DynamicKey.self)
        var container = root.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey(stringValue: "parameters"))
        for parameter in parameters {
            try container.encode(Entry(distribution: parameter.distribution, condition: parameter.condition), forKey: DynamicKey(stringValue: parameter.name))
        }
    }
}
