// Turns an architecture's choices (a dictionary name -> value) into the numeric feature row the
import Foundation
// predictors learn from.

/// One architecture choice as the encoder receives it.
public enum ArchitectureChoice: Codable, Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case number(Double)
    case boolean(Bool)

    public var description: String {
        switch self {
        case .string(let s): s
        case .integer(let i): String(i)
        case .number(let d): String(d)
        case .boolean(let b): String(b)
        }
    }

    var numericValue: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        case .boolean(let b): b ? 1 : 0
        case .string: nil
        }
    }
}

/// How one parameter becomes feature columns.
public enum EncodedParameter: Codable, Sendable, Hashable {
    /// One column per choice, 1 for the chosen one (no order implied).
    case categorical(name: String, choices: [ArchitectureChoice])
    /// One column: the choice's position scaled to [0, 1] (for ordered choices such as widths).
    case ordinal(name: String, levels: [ArchitectureChoice])
    /// One column: the value min-max scaled to [0, 1], optionally on a log scale.
    case numeric(name: String, lower: Double, upper: Double, logScale: Bool)

    public var name: String {
        switch self {
        case .categorical(let n, _), .ordinal(let n, _), .numeric(let n, _, _, _): n
        }
    }
}

/// Errors raised while encoding a configuration.
public enum ArchitectureEncodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingParameter(name: String)
    case unknownChoice(parameter: String, value: String, expected: [String])
    case notNumeric(parameter: String, value: String)
    case outOfRange(parameter: String, value: Double, lower: Double, upper: Double)
    case invalidSpec(parameter: String, detail: String)
    case duplicateParameter(name: String)

    public var description: String {
        switch self {
        case .missingParameter(let n): "parameter \(n) is missing from the configuration"
        case .unknownChoice(let p, let v, let e): "parameter \(p) = \(v); expected one of \(e.joined(separator: ", "))"
        case .notNumeric(let p, let v): "parameter \(p) = \(v); expected a number"
        case .outOfRange(let p, let v, let l, let u): "parameter \(p) = \(v); expected a value in [\(l), \(u)]"
        case .invalidSpec(let p, let d): "parameter \(p): \(d)"
        case .duplicateParameter(let n): "parameter \(n) is specified twice"
        }
    }
}

/// One-hot / ordinal / scaled-numeric encoder over a fixed list of parameter specs.
/// Column order follows the spec list, so rows from the same encoder line up.
public struct ArchitectureEncoding: Codable, Sendable, Hashable {
    public let parameters: [EncodedParameter]

    public init(parameters: [EncodedParameter]) throws {
        var seen = Set<String>()
        for p in parameters {
            guard seen.insert(p.name).inserted else { throw ArchitectureEncodingError.duplicateParameter(name: p.name) }
            switch p {
            case .categorical(let n, let c), .ordinal(let n, let c):
                guard !c.isEmpty, Set(c).count == c.count else {
                    throw ArchitectureEncodingError.invalidSpec(parameter: n, detail: "choices must be non-empty and distinct")
                }
            case .numeric(let n, let lower, let upper, let logScale):
                guard lower < upper, lower.isFinite, upper.isFinite, !logScale || lower > 0 else {
                    throw ArchitectureEncodingError.invalidSpec(parameter: n, detail: "expected finite lower < upper (and lower > 0 on a log scale)")
                }
            }
        }
        self.parameters = parameters
    }

    /// Feature column names, e.g. "edge0=none", "width", for tables and debugging.
    public var columnNames: [String] {
        parameters.flatMap { p -> [String] in
            switch p {
            case .categorical(let n, let choices): choices.map { "\(n)=\($0)" }
            case .ordinal(let n, _), .numeric(let n, _, _, _): [n]
            }
        }
    }

    public var width: Int { columnNames.count }

    public func encode(_ configuration: [String: ArchitectureChoice]) throws -> [Double] {
        var row: [Double] = []
        row.reserveCapacity(width)
        for p in parameters {
            guard let value = configuration[p.name] else { throw ArchitectureEncodingError.missingParameter(name: p.name) }
            switch p {
            case .categorical(let n, let choices):
                guard let k = choices.firstIndex(of: value) else {
                    throw ArchitectureEncodingError.unknownChoice(parameter: n, value: value.description, expected: choices.map(\.description))
                }
                row += choices.indices.map { $0 == k ? 1 : 0 }
            case .ordinal(let n, let levels):
                guard let k = levels.firstIndex(of: value) else {
                    throw ArchitectureEncodingError.unknownChoice(parameter: n, value: value.description, expected: levels.map(\.description))
                }
                row.append(levels.count == 1 ? 0 : Double(k) / Double(levels.count - 1))
            case .numeric(let n, let lower, let upper, let logScale):
                guard let x = value.numericValue else { throw ArchitectureEncodingError.notNumeric(parameter: n, value: value.description) }
                guard x >= lower && x <= upper else { throw ArchitectureEncodingError.outOfRange(parameter: n, value: x, lower: lower, upper: upper) }
                row.append(logScale ? (log(x) - log(lower)) / (log(upper) - log(lower)) : (x - lower) / (upper - lower))
            }
        }
        return row
    }

    /// Encodes many configurations and appends caller-supplied derived features (e.g. FLOPs,
    /// parameter count) to each row; `extraFeatures`, when given, needs one row per configuration.
    public func featureMatrix(_ configurations: [[String: ArchitectureChoice]], extraFeatures: [[Double]]? = nil) throws -> [[Double]] {
        if let extra = extraFeatures, extra.count != configurations.count {
            throw ArchitectureEncodingError.invalidSpec(parameter: "extraFeatures", detail: "\(extra.count) rows for \(configurations.count) configurations")
        }
        return try configurations.enumerated().map { i, c in try encode(c) + (extraFeatures?[i] ?? []) }
    }
}
