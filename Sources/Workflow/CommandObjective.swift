import Foundation
import ProcessRunning
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
        let run = ExternalCommand(
            command,
            environment: ["EDGENAS_PARAMETERS": String(decoding: input, as: UTF8.self), "EDGENAS_TRIAL_NUMBER": String(trialNumber)],
            standardInput: input, timeoutSeconds: timeoutSeconds)
        let output: CommandOutput
        do {
            output = try await run.run()
        } catch {
            if case .timedOut(_, let seconds) = error { throw CommandObjectiveError.timedOut(command: command, seconds: seconds) }
            throw error
        }
        guard output.status == 0 else {
            throw CommandObjectiveError.failed(command: command, status: output.status,
                                               standardError: String(output.standardError.suffix(2000)))
        }
        return try Self.parseResult(output.lastOutputLine, command: command)
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
