import Foundation
import Randomness

/// The values one search-space parameter may take.
public enum Distribution: Hashable, Sendable {
    /// One of a list of choices (kernel size 3 or 5, an operation name).
    case categorical([ParameterValue])
    /// An integer in [low, high] on a grid of `step` from `low`; `log` samples it on a log
    /// scale (then `step` must be 1, as on a log scale a fixed step makes no sense).
    case int(low: Int, high: Int, step: Int = 1, log: Bool = false)
    /// A real number in [low, high]; with a `step`, only low + k * step; `log` samples it on
    /// a log scale (then no step).
    case float(low: Double, high: Double, step: Double? = nil, log: Bool = false)

    /// Number of distinct values, nil when infinite (a float without step).
    public var valueCount: Int? {
        switch self {
        case .categorical(let choices): return choices.count
        case .int(let low, let high, let step, _): return (high - low) / step + 1
        case .float(let low, let high, let step, _):
            guard let step else { return low == high ? 1 : nil }
            return Int(((high - low) / step).rounded()) + 1
        }
    }

    /// Every value in order, for finite distributions (grid search).
    public var allValues: [ParameterValue]? {
        guard let count = valueCount else { return nil }
        return (0..<count).map { value(atIndex: $0) }
    }

    /// The value at position `index` in `allValues`, without building the array.
    func value(atIndex index: Int) -> ParameterValue {
        switch self {
        case .categorical(let choices): return choices[index]
        case .int(let low, _, let step, _): return .int(low + index * step)
        case .float(let low, let high, let step, _):
            return .double(min(high, low + Double(index) * (step ?? 0)))
        }
    }

    /// Whether `value` is one this distribution can produce.
    public func contains(_ value: ParameterValue) -> Bool {
        switch self {
        case .categorical(let choices): return choices.contains(value)
        case .int(let low, let high, let step, _):
            guard let v = value.intValue else { return false }
            return v >= low && v <= high && (v - low) % step == 0
        case .float(let low, let high, let step, _):
            guard let v = value.numericValue else { return false }
            guard v >= low, v <= high else { return false }
            guard let step else { return true }
            let k = (v - low) / step
            return abs(k - k.rounded()) < 1e-8
        }
    }

    /// Checks the distribution is usable; `name` is the parameter, for the message.
    public func validate(name: String) throws(SearchSpaceError) {
        switch self {
        case .categorical(let choices):
            if choices.isEmpty { throw .emptyChoices(parameter: name) }
            if Set(choices).count != choices.count { throw .duplicateChoices(parameter: name) }
        case .int(let low, let high, let step, let log):
            if low > high { throw .lowAboveHigh(parameter: name, low: "\(low)", high: "\(high)") }
            if step <= 0 { throw .nonPositiveStep(parameter: name, step: "\(step)") }
            if log && low <= 0 { throw .logWithNonPositiveLow(parameter: name, low: "\(low)") }
            if log && step != 1 { throw .logWithStep(parameter: name) }
            if (high - low) % step != 0 {
                throw .stepDoesNotDivideRange(parameter: name, low: "\(low)", high: "\(high)", step: "\(step)")
            }
        case .float(let low, let high, let step, let log):
            if !low.isFinite || !high.isFinite { throw .nonFiniteBound(parameter: name) }
            if low > high { throw .lowAboveHigh(parameter: name, low: "\(low)", high: "\(high)") }
            if log && low <= 0 { throw .logWithNonPositiveLow(parameter: name, low: "\(low)") }
            if let step {
                if !(step > 0) || !step.isFinite { throw .nonPositiveStep(parameter: name, step: "\(step)") }
                if log { throw .logWithStep(parameter: name) }
                let k = (high - low) / step
                if abs(k - k.rounded()) > 1e-8 * max(1, k) {
                    throw .stepDoesNotDivideRange(parameter: name, low: "\(low)", high: "\(high)", step: "\(step)")
                }
            }
        }
    }

    /// A uniformly random value (uniform in log space for log distributions).
    public func sampleUniform<G: RandomNumberGenerator>(using rng: inout G) -> ParameterValue {
        switch self {
        case .categorical(let choices):
            return choices[Int(rng.next() % UInt64(choices.count))]
        default:
            return fromUnit(rng.nextUnit())
        }
    }

    // MARK: unit-cube encoding, shared by samplers that work in [0, 1] (Sobol, GP, NSGA-II)

    /// Maps u in [0, 1] to a value: categorical by equal-width bins, numbers linearly (or
    /// log-linearly) then rounded to the step.
    public func fromUnit(_ u: Double) -> ParameterValue {
        let u = min(max(u, 0), 1)
        switch self {
        case .categorical(let choices):
            return choices[min(choices.count - 1, Int(u * Double(choices.count)))]
        case .int(let low, let high, let step, let log):
            // Widen by half a step either side so that each integer gets an equal share.
            let lo = Double(low) - 0.5 * Double(step), hi = Double(high) + 0.5 * Double(step)
            let x = log ? Foundation.exp(Foundation.log(max(lo, 0.5)) + u * (Foundation.log(hi) - Foundation.log(max(lo, 0.5))))
                        : lo + u * (hi - lo)
            return .int(snapInt(x))
        case .float(let low, let high, let step, let log):
            if let step {
                let n = Double(valueCount! - 1)
                let k = min(n, (u * (n + 1)).rounded(.down))
                return .double(min(high, low + k * step))
            }
            let x = log ? Foundation.exp(Foundation.log(low) + u * (Foundation.log(high) - Foundation.log(low)))
                        : low + u * (high - low)
            return .double(min(max(x, low), high))
        }
    }

    /// The inverse of `fromUnit`: the centre of the value's cell in [0, 1].
    public func toUnit(_ value: ParameterValue) -> Double {
        switch self {
        case .categorical(let choices):
            let index = choices.firstIndex(of: value) ?? 0
            return (Double(index) + 0.5) / Double(choices.count)
        case .int(let low, let high, let step, let log):
            let v = Double(value.intValue ?? low)
            let lo = Double(low) - 0.5 * Double(step), hi = Double(high) + 0.5 * Double(step)
            if log {
                let l = Foundation.log(max(lo, 0.5))
                return (Foundation.log(v) - l) / (Foundation.log(hi) - l)
            }
            return (v - lo) / (hi - lo)
        case .float(let low, let high, let step, let log):
            let v = value.numericValue ?? low
            if let step {
                let n = Double(valueCount!)
                return (((v - low) / step).rounded() + 0.5) / n
            }
            if high == low { return 0.5 }
            if log { return (Foundation.log(v) - Foundation.log(low)) / (Foundation.log(high) - Foundation.log(low)) }
            return (v - low) / (high - low)
        }
    }

    /// Rounds a real to the nearest allowed integer of an `.int` distribution.
    func snapInt(_ x: Double) -> Int {
        guard case .int(let low, let high, let step, _) = self else { return Int(x.rounded()) }
        let k = ((x - Double(low)) / Double(step)).rounded()
        let snapped = low + Int(max(0, min(Double((high - low) / step), k))) * step
        return snapped
    }

    /// Rounds a real to the nearest allowed value of a stepped `.float` distribution.
    func snapFloat(_ x: Double) -> Double {
        guard case .float(let low, let high, let step, _) = self else { return x }
        guard let step else { return min(max(x, low), high) }
        let n = Double(valueCount! - 1)
        let k = max(0, min(n, ((x - low) / step).rounded()))
        return min(high, low + k * step)
    }
}

// MARK: - Codable, in the YAML/JSON form users write

extension Distribution: Codable {
    enum CodingKeys: String, CodingKey { case type, choices, low, high, step, log }

    public init(from decoder: any Decoder) throws {
        let path = keyPath(decoder.codingPath)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type: String
        do { type = try container.decode(String.self, forKey: .type) } catch {
            throw SearchSpaceError.invalidField(path: path + ".type", expected: "one of categorical, int, float", found: describeFailure(error))
        }
        switch type {
        case "categorical":
            var values: [ParameterValue] = []
            guard var list = try? container.nestedUnkeyedContainer(forKey: .choices) else {
                throw SearchSpaceError.invalidField(path: path + ".choices", expected: "a list of numbers or strings", found: "missing or not a list")
            }
            while !list.isAtEnd {
                if let i = try? list.decode(Int.self) { values.append(.int(i)) }
                else if let d = try? list.decode(Double.self) { values.append(.double(d)) }
                else if let s = try? list.decode(String.self) { values.append(.string(s)) }
                else {
                    throw SearchSpaceError.invalidField(path: path + ".choices[\(list.currentIndex)]", expected: "a number or a string", found: "another kind of value")
                }
            }
            self = .categorical(values)
        case "int":
            let low = try Self.field(Int.self, .low, container, path, expected: "an integer")
            let high = try Self.field(Int.self, .high, container, path, expected: "an integer")
            let step = try Self.optionalField(Int.self, .step, container, path, expected: "a positive integer") ?? 1
            let log = try Self.optionalField(Bool.self, .log, container, path, expected: "true or false") ?? false
            self = .int(low: low, high: high, step: step, log: log)
        case "float":
            let low = try Self.field(Double.self, .low, container, path, expected: "a number")
            let high = try Self.field(Double.self, .high, container, path, expected: "a number")
            let step = try Self.optionalField(Double.self, .step, container, path, expected: "a positive number")
            let log = try Self.optionalField(Bool.self, .log, container, path, expected: "true or false") ?? false
            self = .float(low: low, high: high, step: step, log: log)
        default:
            throw SearchSpaceError.invalidField(path: path + ".type", expected: "one of categorical, int, float", found: "'\(type)'")
        }
    }

    private static func field<T: Decodable>(_ type: T.Type, _ key: CodingKeys, _ container: KeyedDecodingContainer<CodingKeys>, _ path: String, expected: String) throws -> T {
        guard container.contains(key) else {
            throw SearchSpaceError.invalidField(path: path + "." + key.rawValue, expected: expected, found: "nothing (the key is missing)")
        }
        do { return try container.decode(T.self, forKey: key) } catch {
            throw SearchSpaceError.invalidField(path: path + "." + key.rawValue, expected: expected, found: describeFailure(error))
        }
    }

    private static func optionalField<T: Decodable>(_ type: T.Type, _ key: CodingKeys, _ container: KeyedDecodingContainer<CodingKeys>, _ path: String, expected: String) throws -> T? {
        guard container.contains(key) else { return nil }
        return try field(type, key, container, path, expected: expected)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .categorical(let choices):
            try container.encode("categorical", forKey: .type)
            var list = container.nestedUnkeyedContainer(forKey: .choices)
            for choice in choices {
                switch choice {
                case .int(let v): try list.encode(v)
                case .double(let v): try list.encode(v)
                case .string(let v): try list.encode(v)
                }
            }
        case .int(let low, let high, let step, let log):
            try container.encode("int", forKey: .type)
            try container.encode(low, forKey: .low)
            try container.encode(high, forKey: .high)
            if step != 1 { try container.encode(step, forKey: .step) }
            if log { try container.encode(log, forKey: .log) }
        case .float(let low, let high, let step, let log):
            try container.encode("float", forKey: .type)
            try container.encode(low, forKey: .low)
            try container.encode(high, forKey: .high)
            try container.encodeIfPresent(step, forKey: .step)
            if log { try container.encode(log, forKey: .log) }
        }
    }
}

/// "parameters.channels" from a decoder's coding path.
func keyPath(_ codingPath: [any CodingKey]) -> String {
    codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
        .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
}

/// What a decoder found instead of the expected value, in words.
func describeFailure(_ error: any Error) -> String {
    switch error {
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
         DecodingError.dataCorrupted(let context):
        return context.debugDescription
    case DecodingError.keyNotFound(let key, _):
        return "no key '\(key.stringValue)'"
    default:
        return "\(error)"
    }
}
