import Foundation
import Search

/// An objective evaluated by any external program, so a study can drive an evaluator written
/// in another language or a benchmark run on a board.
///
/// The command runs through `/bin/sh -c`, in a process group of its own. It receives the trial's parameters as a JSON object
/// on standard input and in the environment variable `EDGENAS_PARAMETERS` (plus
/// `EDGENAS_TRIAL_NUMBER`), and prints its result as the last line of standard output: a JSON
/// object `{"values": [..], "constraints": [..]}`, a JSON array of values, or the values
/// separated by spaces.
public struct CommandObjective: Sendable {
    public var command: String
    /// The command is killed after this many seconds (nil: no limit).
    public var timeoutSeconds: Double?

    public init(command: String, timeoutSeconds: Double? = nil) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    public func evaluate(parameters: [String: ParameterValue], trialNumber: Int) async throws -> Evaluation {
        let input = try Self.parametersJSON(parameters)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var environment = ProcessInfo.processInfo.environment
        environment["EDGENAS_PARAMETERS"] = String(decoding: input, as: UTF8.self)
        environment["EDGENAS_TRIAL_NUMBER"] = String(trialNumber)
        process.environment = environment
        // Files rather than pipes: a command that starts a long-lived child would keep a pipe
        // open forever, and a large output cannot fill a pipe's buffer and block the command.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-objective-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inputURL = scratch.appendingPathComponent("parameters.json")
        let outputURL = scratch.appendingPathComponent("stdout"), errorURL = scratch.appendingPathComponent("stderr")
        try input.write(to: inputURL)
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)

        let running = RunningProcess(process)
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
                running.startWatchdog(seconds: timeoutSeconds)
            } catch {
                continuation.resume(throwing: error)
            }
        }
        running.cancelWatchdog()
        if running.timedOut {
            throw CommandObjectiveError.timedOut(command: command, seconds: timeoutSeconds ?? 0)
        }
        let output = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw CommandObjectiveError.failed(command: command, status: status, standardError: String(errors.suffix(2000)))
        }
        let lastLine = output.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        return try Self.parseResult(lastLine, command: command)
    }

    static func parametersJSON(_ parameters: [String: ParameterValue]) throws -> Data {
        var object: [String: Any] = [:]
        for (name, value) in parameters {
            switch value {
            case .int(let number): object[name] = number
            case .double(let number): object[name] = number
            case .string(let text): object[name] = text
            }
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Reads the last output line: `{"values": [...], "constraints": [...]}`, `[...]`, or numbers.
    public static func parseResult(_ line: String, command: String) throws -> Evaluation {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        func numbers(_ any: Any?) -> [Double]? {
            guard let array = any as? [Any] else { return nil }
            let values = array.compactMap { ($0 as? NSNumber)?.doubleValue }
            return values.count == array.count ? values : nil
        }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("["),
           let parsed = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) {
            if let values = numbers(parsed) { return Evaluation(values: values) }
            if let object = parsed as? [String: Any], let values = numbers(object["values"]) {
                return Evaluation(values: values, constraints: numbers(object["constraints"]))
            }
        } else {
            let values = trimmed.split(separator: " ").compactMap { Double($0) }
            if !values.isEmpty, values.count == trimmed.split(separator: " ").count { return Evaluation(values: values) }
        }
        throw CommandObjectiveError.unreadableResult(command: command, line: line)
    }
}

/// A started process and the watchdog that ends it when it runs past its time limit.
private final class RunningProcess: @unchecked Sendable {
    private let process: Process
    private let lock = NSLock()
    private var watchdog: Task<Void, Never>?
    private var expired = false

    init(_ process: Process) { self.process = process }

    var timedOut: Bool { lock.withLock { expired } }

    func startWatchdog(seconds: Double?) {
        guard let seconds else { return }
        let task = Task { [self] in
            try? await Task.sleep(for: .seconds(seconds))
            guard !Task.isCancelled else { return }
            lock.withLock {
                if process.isRunning {
                    expired = true
                    // Foundation starts the child as the leader of its own process group; killing
                    // the group stops what the command started too, not just the shell.
                    let pid = process.processIdentifier
                    kill(getpgid(pid) == pid ? -pid : pid, SIGKILL)
                }
            }
        }
        lock.withLock { watchdog = task }
    }

    func cancelWatchdog() { lock.withLock { watchdog?.cancel() } }
}

public enum CommandObjectiveError: Error, CustomStringConvertible {
    case failed(command: String, status: Int32, standardError: String)
    case timedOut(command: String, seconds: Double)
    case unreadableResult(command: String, line: String)

    public var description: String {
        switch self {
        case .failed(let command, let status, let standardError):
            "objective command '\(command)' exited with status \(status)" + (standardError.isEmpty ? "" : ": \(standardError)")
        case .timedOut(let command, let seconds):
            "objective command '\(command)' ran longer than its limit of \(seconds) s and was stopped"
        case .unreadableResult(let command, let line):
            "objective command '\(command)' printed '\(line)' as its last line; expected a JSON object "
                + "{\"values\": [...], \"constraints\": [...]}, a JSON array of numbers, or numbers separated by spaces"
        }
    }
}
