import Foundation
import Testing

/// `edgenas doctor`, run as a user runs it: the binary the build put next to this test bundle.
@Suite(.serialized)
struct DoctorCommandTests {
    struct Run {
        var status: Int32
        var output: String
    }

    /// The edgenas binary: EDGENAS_BINARY, else next to the test bundle, else the package's debug build.
    static func executable() throws -> URL {
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["EDGENAS_BINARY"] { candidates.append(URL(fileURLWithPath: path)) }
        var directory = Bundle.main.bundleURL
        for _ in 0..<3 {
            candidates.append(directory.appendingPathComponent("edgenas"))
            directory.deleteLastPathComponent()
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/edgenas"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }) else {
            throw DoctorTestError(description: "edgenas not found (looked in \(candidates.map(\.path))); build it with `swift build --product edgenas`")
        }
        return found
    }

    struct DoctorTestError: Error, CustomStringConvertible { var description: String }

    static func doctor(_ arguments: [String] = [], environment overrides: [String: String] = [:]) throws -> Run {
        try edgenas(["doctor"] + arguments, environment: overrides)
    }

    /// Runs `edgenas arguments...` and collects its exit status and its output (stdout and stderr).
    static func edgenas(_ arguments: [String], environment overrides: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(overrides) { $1 }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-doctor-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return Run(status: process.terminationStatus, output: try String(contentsOf: output, encoding: .utf8))
    }

    /// Debian's libtorch (or any TORCH_ROOT one) has INT8 engines: the default pipeline can run.
    @Test func passesWithLibtorchAndItsInt8Engines() throws {
        let run = try Self.doctor()
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("INT8 engines"))
        #expect(run.output.contains("OK: ready to search"), "\(run.output)")
    }

    /// ONNX Runtime is only needed by some commands: a warning with its fix, not a failure.
    @Test func missingONNXRuntimeIsAWarningWithItsFix() throws {
        let run = try Self.doctor(environment: ["EDGENAS_ONNXRUNTIME_LIBRARY": "/nonexistent/libonnxruntime.so"])
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").map(String.init)
        let index = try #require(lines.firstIndex { $0.contains("warning") && $0.contains("/nonexistent/libonnxruntime.so") }, "\(run.output)")
        #expect(lines[index + 1].contains("fix:"))
    }

    /// A PostgreSQL URL nobody answers at fails the check, with what to look at.
    @Test func unreachablePostgresFails() throws {
        let run = try Self.doctor(["--storage", "postgresql://edgenas:secret@127.0.0.1:1/none?connect_timeout=2&sslmode=disable"])
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("MISSING"), "\(run.output)")
        #expect(run.output.contains("fix: check that the server runs"), "\(run.output)")
        #expect(!run.output.contains("secret"), "the password must not be printed")
        #expect(run.output.contains("NOT READY"))
    }

    /// The test PostgreSQL server scripts/test.sh starts is reachable through doctor.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_URL"] != nil))
    func reachablePostgresPasses() throws {
        let url = try #require(ProcessInfo.processInfo.environment["EDGENAS_TEST_POSTGRES_URL"])
        let run = try Self.doctor(["--storage", url])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("connected to"), "\(run.output)")
    }
}
