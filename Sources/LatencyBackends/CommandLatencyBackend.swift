import Foundation
import Hardware
import ProcessRunning
import Vision

/// Latency from an external benchmark program, e.g. onnxruntime's `onnxruntime_perf_test`,
/// TFLite's `benchmark_model` or a vendor tool, run through `/bin/sh -c`.
///
/// The template's placeholders are replaced, shell-quoted, before each run:
/// `{model}` the model file, `{threads}` the thread count, `{architecture}` the
/// architecture's short name, `{input_width}` and `{input_height}` the input's size in pixels,
/// `{input_size}` the side of a square input (`WIDTHxHEIGHT` for another). Other text in braces
/// (an awk program, say) is left as it is.
///
/// The benchmark runs its own warm-up and repeats; its last non-empty output line is its
/// result (see `BenchmarkOutput.parse`). Because it decides itself how many runs to make,
/// the measurement's stop reason is `maximumRuns` (a fixed count) and its warm-up count 0.
public struct CommandLatencyBackend: LatencyBackend {
    public var template: String
    public var threads: Int
    /// The benchmark's process group is killed after this many seconds.
    public var timeoutSeconds: Double
    /// The model file `{model}` names for an architecture; nil when the template does not
    /// use `{model}` (the benchmark builds the network itself).
    public var modelFile: (@Sendable (DetectorArchitecture) throws -> URL)?

    public init(template: String, threads: Int = 1, timeoutSeconds: Double = 300,
                modelFile: (@Sendable (DetectorArchitecture) throws -> URL)? = nil) {
        self.template = template
        self.threads = threads
        self.timeoutSeconds = timeoutSeconds
        self.modelFile = modelFile
    }

    public var name: String { "command" }

    /// The placeholders a template may use.
    public static let placeholders = ["{model}", "{threads}", "{architecture}", "{input_size}", "{input_width}", "{input_height}"]

    public func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        guard threads >= 1 else { throw HardwareError.invalidSetting("threads", value: String(threads), expected: "at least 1") }
        var model: URL?
        if template.contains("{model}") {
            guard let modelFile else { throw CommandBackendError.noModelFile(template: template) }
            model = try modelFile(architecture)
        }
        let command = Self.fill(template, model: model, threads: threads, architecture: architecture)
        let output = try ExternalCommand(command, timeoutSeconds: timeoutSeconds).runBlocking()
        guard output.status == 0 else {
            throw CommandBackendError.failed(command: command, status: output.status, standardError: String(output.standardError.suffix(2000)))
        }
        let samples = try BenchmarkOutput.parse(output.lastOutputLine, command: command)
        return try LatencyMeasurement(backend: name, architecture: architecture.description, threads: threads, warmupRuns: 0,
                                      samples: TimedSamples(reported: samples, stopReason: .maximumRuns))
    }

    /// The command line of `template` for one run, every placeholder replaced by its
    /// shell-quoted value.
    public static func fill(_ template: String, model: URL?, threads: Int, architecture: DetectorArchitecture) -> String {
        var command = template
        if let model { command = command.replacingOccurrences(of: "{model}", with: shellQuoted(model.path)) }
        command = command.replacingOccurrences(of: "{threads}", with: String(threads))
        command = command.replacingOccurrences(of: "{architecture}", with: shellQuoted(architecture.description))
        let (width, height) = (architecture.inputWidth, architecture.inputHeight)
        command = command.replacingOccurrences(of: "{input_width}", with: String(width))
        command = command.replacingOccurrences(of: "{input_height}", with: String(height))
        return command.replacingOccurrences(of: "{input_size}", with: width == height ? String(width) : "\(width)x\(height)")
    }

    /// `text` as one word for `/bin/sh`: in single quotes, each single quote written as '\''.
    public static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// Reads the result line of an external benchmark.
public enum BenchmarkOutput {
    /// Latency samples in milliseconds from `line`, which is one of:
    /// - a JSON object with `"samples_ms": [..]` or `"median_ms": x`,
    /// - a JSON array of numbers (samples in milliseconds),
    /// - numbers separated by spaces or commas, optionally followed by a unit `ms`, `us` or `s`
    ///   (milliseconds when there is none), e.g. `7.81`, `7.8 7.9 8.0`, `1580 us`.
    public static func parse(_ line: String, command: String) throws(CommandBackendError) -> [Double] {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        var samples: [Double]?
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            if let parsed = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) {
                if let object = parsed as? [String: Any] {
                    samples = numbers(object["samples_ms"]) ?? (object["median_ms"] as? NSNumber).map { [$0.doubleValue] }
                } else {
                    samples = numbers(parsed)
                }
            }
        } else {
            var words = trimmed.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
            let scale = ["ms": 1.0, "us": 1e-3, "s": 1e3][words.last ?? ""]
            if scale != nil { words.removeLast() }
            let values = words.compactMap(Double.init)
            if !values.isEmpty, values.count == words.count { samples = values.map { $0 * (scale ?? 1) } }
        }
        guard let samples, !samples.isEmpty, samples.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .unreadableOutput(command: command, line: line)
        }
        return samples
    }

    private static func numbers(_ any: Any?) -> [Double]? {
        guard let array = any as? [Any] else { return nil }
        let values = array.compactMap { ($0 as? NSNumber)?.doubleValue }
        return values.count == array.count ? values : nil
    }
}

public enum CommandBackendError: Error, Equatable, Sendable, CustomStringConvertible {
    case failed(command: String, status: Int32, standardError: String)
    case unreadableOutput(command: String, line: String)
    case noModelFile(template: String)

    public var description: String {
        switch self {
        case .failed(let command, let status, let standardError):
            "benchmark command '\(command)' exited with status \(status)" + (standardError.isEmpty ? "" : ": \(standardError)")
        case .unreadableOutput(let command, let line):
            "benchmark command '\(command)' printed '\(line)' as its last line; expected positive latencies in milliseconds: "
                + "{\"samples_ms\": [..]} or {\"median_ms\": x}, a JSON array, or numbers with an optional unit ms, us or s"
        case .noModelFile(let template):
            "benchmark command '\(template)' uses {model}, but no model file is available for it; "
                + "give the backend a model file (the agent gets one with each upload) or drop {model} from the command"
        }
    }
}
