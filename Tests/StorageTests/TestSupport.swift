import Foundation
import PostgresNIO
import Search
import Testing
@testable import Storage

/// The engines the tests run against. SQLite always; PostgreSQL when
/// EDGENAS_TEST_POSTGRES_URL names a database (see scripts/postgres-test-server.sh).
enum TestEngines {
    static let postgresURL: String? = ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }
    /// A shell command that restarts the test server (the restart test needs it).
    static let postgresRestartCommand: String? = ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_RESTART"]
        .flatMap { $0.isEmpty ? nil : $0 }

    static let postgresSkipMessage: Comment =
        "EDGENAS_TEST_POSTGRES_URL is not set: PostgreSQL storage tests skipped (run scripts/postgres-test-server.sh start)"
    static let restartSkipMessage: Comment =
        "EDGENAS_TEST_POSTGRES_RESTART is not set: PostgreSQL restart test skipped (scripts/postgres-test-server.sh start sets it)"

    /// A fresh SQLite file in a fresh temporary directory.
    static func sqliteURL() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-storage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return "sqlite://" + directory.appendingPathComponent("study.db").path
    }

    static func postgresSettings() throws -> PostgresSettings {
        guard let url = postgresURL else { throw TestSetupError("EDGENAS_TEST_POSTGRES_URL is not set") }
        guard case .postgres(let settings) = try StorageURL(url) else {
            throw TestSetupError("EDGENAS_TEST_POSTGRES_URL is not a postgresql:// URL")
        }
        return settings
    }

    static func postgres() async throws -> PostgresStorage {
        try await PostgresStorage(settings: postgresSettings())
    }

    /// A study name no other test (nor an earlier run on the same database) uses.
    static func uniqueStudyName(_ purpose: String) -> String { "\(purpose)-\(UUID().uuidString.prefix(8))" }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs edgenas-storage-worker processes.
enum WorkerProcesses {
    /// The worker binary: EDGENAS_STORAGE_WORKER, else next to the test bundle, else in the
    /// package's debug build folder.
    static func executable() throws -> URL {
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["EDGENAS_STORAGE_WORKER"] { candidates.append(URL(fileURLWithPath: path)) }
        var directory = Bundle.main.bundleURL
        for _ in 0..<3 {
            candidates.append(directory.appendingPathComponent("edgenas-storage-worker"))
            directory.deleteLastPathComponent()
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/edgenas-storage-worker"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw TestSetupError(
                "edgenas-storage-worker not found (looked in \(candidates.map(\.path))); build it with "
                    + "`swift build --product edgenas-storage-worker` or set EDGENAS_STORAGE_WORKER")
        }
        return found
    }

    /// A started process; `finished()` waits for its exit without blocking a thread (a
    /// blocking `waitUntilExit` would hold one of the few threads of the test's executor).
    final class Worker: @unchecked Sendable {
        let process = Process()
        /// Stderr goes to a file, not a pipe: a pipe's write end inherited by a long-lived
        /// grandchild (a PostgreSQL server restarted by the restart test) would never reach
        /// end-of-file.
        private let errorLog = FileManager.default.temporaryDirectory
            .appendingPathComponent("edgenas-worker-\(UUID().uuidString).log")
        private let exited: AsyncStream<Int32>
        private let continuation: AsyncStream<Int32>.Continuation

        convenience init(arguments: [String]) throws {
            try self.init(executable: WorkerProcesses.executable(), arguments: arguments)
        }

        init(executable: URL, arguments: [String]) throws {
            (exited, continuation) = AsyncStream.makeStream(of: Int32.self)
            process.executableURL = executable
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            FileManager.default.createFile(atPath: errorLog.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: errorLog)
            let continuation = continuation
            process.terminationHandler = { process in
                continuation.yield(process.terminationStatus)
                continuation.finish()
            }
            try process.run()
        }

        /// The exit status and what the worker wrote to stderr.
        func finished() async -> (status: Int32, errors: String) {
            var status: Int32 = -1
            for await value in exited { status = value }
            let errors = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: errorLog)
            return (status, errors)
        }

        func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// Launches one worker per argument list and waits for all; kills them all when
    /// `deadline` seconds pass first.
    static func run(_ argumentLists: [[String]], deadline: TimeInterval = 180) async throws -> [(status: Int32, errors: String)] {
        let workers = try argumentLists.map { try Worker(arguments: $0) }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(deadline))
            workers.forEach { $0.kill() }
        }
        defer { watchdog.cancel() }
        var results: [(status: Int32, errors: String)] = []
        for worker in workers { results.append(await worker.finished()) }
        return results
    }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass.
func eventually(within seconds: TimeInterval, _ condition: () async throws -> Bool) async throws -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
