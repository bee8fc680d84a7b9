import Foundation
import Search

/// A benchmark problem: a search space, an objective returning losses (all minimised) and
/// the hypervolume of its true Pareto front for the reference point.
struct Problem: Sendable {
    let name: String
    let space: SearchSpace
    let directions: [StudyDirection]
    let reference: [Double]
    let trueHypervolume: Double
    /// Objective values in study directions, from the parameters.
    let evaluate: @Sendable ([String: ParameterValue]) -> [Double]
    /// Objective values -> losses in the reference point's frame.
    let losses: @Sendable ([Double]) -> [Double]
}

/// Continuous test problems with 6 variables in [0, 1] and 2 objectives.
enum Continuous {
    static let dimensions = 6

    static func space() -> SearchSpace {
        try! SearchSpace(Dictionary(uniqueKeysWithValues: (0..<dimensions).map { ("x\($0)", Distribution.float(low: 0, high: 1)) }))
    }

    static func vector(_ p: [String: ParameterValue]) -> [Double] {
        (0..<dimensions).map { p["x\($0)"]!.numericValue! }
    }

    /// The distance variables of the shifted/rotated variants: z = R (x - s), with shift
    /// s_i = 0.2 + 0.6 i / (k - 1) and R a product of Givens rotations by 0.5 rad of the
    /// pairs (0,1), (1,2), ... (the Python benchmark builds the same transform), so that
    /// the optimum x = s is inside the box and the variables interact.
    static func shiftRotate(_ tail: [Double]) -> [Double] {
        let k = tail.count
        var z = tail.enumerated().map { $1 - (0.2 + 0.6 * Double($0) / Double(max(k - 1, 1))) }
        let c = cos(0.5), s = sin(0.5)
        for i in 0..<(k - 1) {
            let a = z[i], b = z[i + 1]
            z[i] = c * a - s * b
            z[i + 1] = s * a + c * b
        }
        return z
    }

    static func zdt(_ kind: Int, _ x: [Double], shifted: Bool) -> [Double] {
        let tail = Array(x.dropFirst())
        let n = Double(x.count)
        var g: Double
        if shifted {
            g = 1 + 9 / (n - 1) * shiftRotate(tail).reduce(0) { $0 + $1 * $1 }
        } else if kind == 6 {
            g = 1 + 9 * pow(tail.reduce(0, +) / (n - 1), 0.25)
        } else {
            g = 1 + 9 / (n - 1) * tail.reduce(0, +)
        }
        if shifted && kind == 6 { g = 1 + 9 * pow((g - 1) / 9, 0.25) }
        let f1 = kind == 6 ? 1 - exp(-4 * x[0]) * pow(sin(6 * Double.pi * x[0]), 6) : x[0]
        let r = f1 / g
        let h: Double = switch kind {
        case 1: 1 - r.squareRoot()
        case 2, 6: 1 - r * r
        default: 1 - r.squareRoot() - r * sin(10 * Double.pi * f1)
        }
        return [f1, g * h]
    }

    static func dtlz(_ kind: Int, _ x: [Double], shifted: Bool) -> [Double] {
        let tail = Array(x.dropFirst())
        if kind == 2 {
            let g = shifted ? shiftRotate(tail).reduce(0) { $0 + $1 * $1 } : tail.reduce(0) { $0 + ($1 - 0.5) * ($1 - 0.5) }
            return [(1 + g) * cos(x[0] * Double.pi / 2), (1 + g) * sin(x[0] * Double.pi / 2)]
        }
        let sum = shifted ? shiftRotate(tail).reduce(0) { $0 + abs($1) } : tail.reduce(0, +)
        let g = 1 + 9 / Double(tail.count) * sum
        let f1 = x[0]
        let h = 2 - f1 / (1 + g) * (1 + sin(3 * Double.pi * f1))
        return [f1, (1 + g) * h]
    }

    /// The true front, densely sampled: f2 as a function of f1 on the optimal set.
    static func front(_ name: String) -> [[Double]] {
        let count = 20_000
        let grid = (0...count).map { Double($0) / Double(count) }
        let base = name.replacingOccurrences(of: "-sr", with: "")
        var points: [[Double]]
        switch base {
        case "zdt1": points = grid.map { [$0, 1 - $0.squareRoot()] }
        case "zdt2": points = grid.map { [$0, 1 - $0 * $0] }
        case "zdt3": points = grid.map { [$0, 1 - $0.squareRoot() - $0 * sin(10 * Double.pi * $0)] }
        case "zdt6":
            points = grid.map { x in
                let f1 = 1 - exp(-4 * x) * pow(sin(6 * Double.pi * x), 6)
                return [f1, 1 - f1 * f1]
            }
        case "dtlz2": points = grid.map { [cos($0 * Double.pi / 2), sin($0 * Double.pi / 2)] }
        default: points = grid.map { [$0, 2 * (2 - $0 / 2 * (1 + sin(3 * Double.pi * $0)))] }
        }
        return points
    }

    static func reference(_ name: String) -> [Double] {
        name.hasPrefix("dtlz7") ? [1.1, 4.4] : [1.1, 1.1]
    }

    static func problem(_ name: String) -> Problem {
        let shifted = name.hasSuffix("-sr")
        let base = name.replacingOccurrences(of: "-sr", with: "")
        let kind = Int(base.dropFirst(base.hasPrefix("zdt") ? 3 : 4))!
        let isZDT = base.hasPrefix("zdt")
        let reference = reference(name)
        return Problem(
            name: name, space: space(), directions: [.minimize, .minimize], reference: reference,
            trueHypervolume: Pareto.hypervolume(front(name), reference: reference),
            evaluate: { p in isZDT ? zdt(kind, vector(p), shifted: shifted) : dtlz(kind, vector(p), shifted: shifted) },
            losses: { $0 })
    }
}

/// NAS-Bench-201: 6 edges, 5 operations each; CIFAR-10 accuracy (max) vs latency (min).
enum NB201 {
    static let operations = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]

    static func space() -> SearchSpace {
        try! SearchSpace(Dictionary(uniqueKeysWithValues: (0..<6).map { ("edge\($0)", Distribution.categorical(operations.map(ParameterValue.string))) }))
    }

    /// "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" from edges 0...5 in NB201 order.
    static func archString(_ p: [String: ParameterValue]) -> String {
        let op = (0..<6).map { p["edge\($0)"]!.stringValue! }
        return "|\(op[0])~0|+|\(op[1])~0|\(op[2])~1|+|\(op[3])~0|\(op[4])~1|\(op[5])~2|"
    }

    static func loadColumn(_ path: String, column: String) throws -> [String: Double] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n")
        let header = lines.removeFirst().split(separator: ",").map(String.init)
        guard let index = header.firstIndex(of: column) else { throw BenchError.missingColumn(path, column) }
        var table: [String: Double] = [:]
        for line in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            table[String(fields[1])] = Double(fields[index])!
        }
        return table
    }

    static func problem(device: String, dataDirectory: String) throws -> Problem {
        let accuracy = try loadColumn(dataDirectory + "/archs.csv", column: "cifar10_test_acc")
        let latency = try loadColumn(dataDirectory + "/latency.csv", column: "\(device)_ms")
        let maxLatency = latency.values.max()!
        // Losses: error rate in [0, 1] and latency over the slowest architecture's.
        let losses: @Sendable ([Double]) -> [Double] = { [1 - $0[0] / 100, $0[1] / maxLatency] }
        let reference = [1.0, 1.05]
        let all = accuracy.keys.map { losses([accuracy[$0]!, latency[$0]!]) }
        return Problem(
            name: "nb201-\(device)", space: space(), directions: [.maximize, .minimize], reference: reference,
            trueHypervolume: Pareto.hypervolume(all, reference: reference),
            evaluate: { p in
                let arch = archString(p)
                return [accuracy[arch]!, latency[arch]!]
            },
            losses: losses)
    }
}

enum BenchError: Error, CustomStringConvertible {
    case missingColumn(String, String)
    case unknown(String)
    var description: String {
        switch self {
        case .missingColumn(let path, let column): "\(path): no column '\(column)'"
        case .unknown(let what): "unknown \(what)"
        }
    }
}
