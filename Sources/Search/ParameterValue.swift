/// One sampled value of a search-space parameter.
///
/// Categorical choices may be integers (kernel size 3 or 5), floats or strings
/// (an operation name); numeric parameters are `.int` or `.double`.
public enum ParameterValue: Hashable, Codable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)

    public var description: String {
        switch self {
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .string(let value): value
        }
    }

    /// The value as a number, for samplers that model numeric parameters.
    public var numericValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .string: nil
        }
    }

    public var intValue: Int? {
        if case .int(let value) = self { return value }
        return nil
    }

    public var doubleValue: Double? { numericValue }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
