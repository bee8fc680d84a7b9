import Foundation

/// A shell command run as a child process with an optional time limit: the study workers'
/// objective commands and the latency backends' benchmark commands both run this way.
///
/// The command runs through `/bin/sh -c` in a process group of its own, so a time limit stops
/// whatever the command started too, not just the shell. Standard output and error go to
/// files rather than pipes: a command that starts a long-lived child would keep a pipe open
/// forever, and a large output cannot fill a pipe's buffer and block the command.
public struct ExternalCommand: Sendable, Hashable {
    /// The shell command line.
    public var command: String
    /// Variables added to (or replacing those of) this process's environment.
    public var environment: [String: String]
    /// Bytes the command reads on standard input (empty input when nil).
    public var standardInput: Data?
    /// The process group is killed after this many seconds (nil: no limit).
    public var timeoutSeconds: Double?

    public init(_ command: String, environment: [String: String] = [:], standardInput: Data? = nil, timeoutSeconds: Double? = nil) {
        self.command = command
        self.environment = environment
        self.standardInput = standardInput
        self.timeoutSeconds = timeoutSeconds
    }

    /// Runs the command to its end (or its time limit) without blocking a thread; cancelling
    /// the calling task kills the command's process group.
    public func run() async throws(ExternalCommandError) -> CommandOutput {
        let started = try start()
        let result: Result<CommandOutput, ExternalCommandError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                started.onExit { continuation.resume(returning: $0) }
            }
        } onCancel: {
            started.kill(reason: .cancelled)
        }
        return try result.get()
    }

    /// Runs the command to its end (or its time limit), blocking the calling thread: for
    /// synchronous callers such as `LatencyBackend.measure`.
    public func runBlocking() throws(ExternalCommandError) -> CommandOutput {
        let started = try start()
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        // The process's termination handler holds `started` weakly: it must live until the end.
        withExtendedLifetime(started) {
            started.onExit { result in
                box.set(result)
                done.signal()
            }
            done.wait()
        }
        return try box.get().get()
    }

    private func start() throws(ExternalCommandError) -> StartedCommand {
        if let timeoutSeconds, !(timeoutSeconds > 0) {
            throw .invalidTimeout(command: command, seconds: timeoutSeconds)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
        let files: ScratchFiles
        do {
            files = try ScratchFiles(standardInput: standardInput ?? Data())
            process.standardInput = try FileHandle(forReadingFrom: files.input)
            process.standardOutput = try FileHandle(forWritingTo: files.output)
            process.standardError = try FileHandle(forWritingTo: files.error)
        } catch {
            throw .couldNotStart(command: command, reason: "cannot create its scratch files: \(error)")
        }
        let started = StartedCommand(command: command, process: process, files: files, timeoutSeconds: timeoutSeconds)
        // Weak: the process keeps its handler, and the caller keeps `started` until the end.
        process.terminationHandler = { [weak started] in started?.finished(status: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            files.remove()
            throw .couldNotStart(command: command, reason: "\(error)")
        }
        started.startWatchdog()
        return started
    }
}

/// What a finished command printed and how it exited.
public struct CommandOutput: Sendable, Hashable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String

    /// The last non-empty line of standard output, trimmed ("" when there is none): where
    /// commands print their result after any progress output.
    public var lastOutputLine: String {
        standardOutput.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .last { !$0.isEmpty } ?? ""
    }
}

public enum ExternalCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    case couldNotStart(command: String, reason: String)
    case timedOut(command: String, seconds: Double)
    case cancelled(command: String)
    case invalidTimeout(command: String, seconds: Double)

    public var description: String {
        switch self {
        case .couldNotStart(let command, let reason): "command '\(command)' could not be started: \(reason)"
        case .timedOut(let command, let seconds): "command '\(command)' ran longer than its limit of \(seconds) s and was stopped"
        case .cancelled(let command): "command '\(command)' was stopped because its caller was cancelled"
        case .invalidTimeout(let command, let seconds):
            "command '\(command)' has a time limit of \(seconds) s; expected a positive number of seconds"
        }
    }
}

/// Standard input, output and error files of one run in a fresh temporary folder.
private struct ScratchFiles: Sendable {
    let folder: URL, input: URL, output: URL, error: URL

    init(standardInput: Data) throws {
        let manager = FileManager.default
        folder = manager.temporaryDirectory.appendingPathComponent("edgenas-command-\(UUID().uuidString)")
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        input = folder.appendingPathComponent("stdin")
        output = folder.appendingPathComponent("stdout")
        error = folder.appendingPathComponent("stderr")
        try standardInput.write(to: input)
        for file in [output, error] where !manager.createFile(atPath: file.path, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
    }

    func read() -> (output: String, error: String) {
        ((try? String(contentsOf: output, encoding: .utf8)) ?? "", (try? String(contentsOf: error, encoding: .utf8)) ?? "")
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// A running command: its watchdog, why it was killed (if it was), and who waits for its end.
private final class StartedCommand: @unchecked Sendable {
    enum KillReason { case timeout, cancelled }

    let command: String
    private let process: Process
    private let files: ScratchFiles
    private let timeoutSeconds: Double?
    // Guards everything below; the termination handler, the watchdog and the waiter run on
    // different threads.
    private let lock = NSLock()
    private var killReason: KillReason?
    private var watchdog: DispatchWorkItem?
    private var result: Result<CommandOutput, ExternalCommandError>?
    private var waiter: (@Sendable (Result<CommandOutput, ExternalCommandError>) -> Void)?

    init(command: String, process: Process, files: ScratchFiles, timeoutSeconds: Double?) {
        self.command = command
        self.process = process
        self.files = files
        self.timeoutSeconds = timeoutSeconds
    }

    func startWatchdog() {
        guard let timeoutSeconds else { return }
        let item = DispatchWorkItem { [self] in kill(reason: .timeout) }
        lock.withLock { watchdog = item }
        Self.watchdogs.asyncAfter(deadline: .now() + timeoutSeconds, execute: item)
    }

    /// Watchdogs fire on a queue of their own, not on `DispatchQueue.global()`: that pool has only
    /// as many threads as cores and grows late, so on two cores busy with blocking work a
    /// timeout could fire many seconds past its deadline (a private serial queue always gets a
    /// thread).
    private static let watchdogs = DispatchQueue(label: "edgenas.command-watchdogs")

    func kill(reason: KillReason) {
        lock.withLock {
            guard result == nil, process.isRunning else { return }
            killReason = reason
            // Foundation starts the child as the leader of its own process group; killing the
            // group stops what the command started too, not just the shell.
            let pid = process.processIdentifier
            _ = Foundation.kill(getpgid(pid) == pid ? -pid : pid, SIGKILL)
        }
    }

    func finished(status: Int32) {
        let (output, error) = files.read()
        files.remove()
        let callback: (@Sendable (Result<CommandOutput, ExternalCommandError>) -> Void)?
        let outcome: Result<CommandOutput, ExternalCommandError>
        lock.lock()
        watchdog?.cancel()
        switch killReason {
        case .timeout: outcome = .failure(.timedOut(command: command, seconds: timeoutSeconds ?? 0))
        case .cancelled: outcome = .failure(.cancelled(command: command))
        case nil: outcome = .success(CommandOutput(status: status, standardOutput: output, standardError: error))
        }
        result = outcome
        callback = waiter
        waiter = nil
        lock.unlock()
        callback?(outcome)
    }

    /// Calls `body` once with the outcome: at once when the command has already ended.
    func onExit(_ body: @escaping @Sendable (Result<CommandOutput, ExternalCommandError>) -> Void) {
        lock.lock()
        if let result {
            lock.unlock()
            body(result)
        } else {
            waiter = body
            lock.unlock()
        }
    }
}

/// Hands a result from the termination handler's thread to a thread blocked on a semaphore.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<CommandOutput, ExternalCommandError>?

    func set(_ result: Result<CommandOutput, ExternalCommandError>) { lock.withLock { value = result } }
    func get() -> Result<CommandOutput, ExternalCommandError> { lock.withLock { value! } }
}
