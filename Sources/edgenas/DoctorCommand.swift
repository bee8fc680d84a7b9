import ArgumentParser
import Foundation
import ProcessRunning
import LatencyBackends
import ONNXRuntime
import Search
import Storage
import Torch

/// Checks the installation against what README promises: libtorch and its INT8 engines (the
/// default pipeline measures INT8 latency in-process with them), ONNX Runtime's library (the
/// `onnxruntime` latency backend and `profile --runtime onnxruntime`), Vela (optional: the `vela`
/// latency backend), threads, study storage (a
/// PostgreSQL server is connected to when a URL is given), and what only the tests need.
/// Exits non-zero when something the default pipeline needs is missing or a given storage URL
/// does not work; each item that is not fine says how to fix it.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the installation: libtorch, INT8 engines, ONNX Runtime, threads, storage.",
        discussion: """
            Exits with status 1 when something the default pipeline needs is missing (libtorch, \
            an INT8 engine) or the storage given with --storage cannot be used. ONNX Runtime and \
            the test tools are reported as warnings: only some commands need them.
            """)

    @Option(help: ArgumentHelp("A study storage URL to check: a PostgreSQL URL is connected to "
        + "(as `edgenas search` would: an empty database gets EdgeNAS's tables); a SQLite URL's folder must be writable.",
        valueName: "url"))
    var storage: String?

    func run() async throws {
        var report = DoctorReport()
        print("EdgeNAS \(EdgeNAS.configuration.version)")
        print("")

        report.section("libtorch (required: training, FP32 and INT8 latency)")
        let torchLibrary = Self.loadedLibraryPath(containing: "libtorch_cpu")
        report.add(.ok, "version", TorchLibrary.version)
        report.add(torchLibrary == nil ? .warning : .ok, "library", torchLibrary ?? "not found in /proc/self/maps")
        let engines = TorchLibrary.supportedQuantizedEngines.filter { !["none", "noqengine"].contains($0.lowercased()) }
        if engines.isEmpty {
            report.add(.missing, "INT8 engines", "none: INT8 latency (the default latency backend) cannot be measured in-process",
                       fix: "use a libtorch built with FBGEMM or QNNPACK: Debian's libtorch-dev (scripts/install.sh) has both")
        } else {
            report.add(.ok, "INT8 engines", engines.joined(separator: ", "))
        }

        report.section("ONNX Runtime (the onnxruntime latency backend, profile --runtime onnxruntime)")
        do {
            let library = try ONNXRuntimeLibrary()
            report.add(.ok, "library", "\(library.version) at \(library.path)")
        } catch {
            let variable = ONNXRuntimeLibrary.environmentVariable
            let fromVariable = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
            report.add(.warning, "library", fromVariable.map { "\($0) (from \(variable)) does not load" }
                           ?? "libonnxruntime not found in \(ONNXRuntimeLibrary.installDirectory) or on the loader's path",
                       fix: fromVariable == nil
                           ? "run scripts/install.sh (it takes the library out of PyPI's onnxruntime wheel), or set \(variable) to a libonnxruntime.so"
                           : "point \(variable) at a libonnxruntime.so that loads, or unset it")
        }

        report.section("Vela (the vela ACCELERATOR latency backend: Ethos-U NPU estimates; optional)")
        let vela = VelaLatencyBackend(accelerator: "ethos-u65-256").executable
        let version = try? ExternalCommand("'\(vela.replacingOccurrences(of: "'", with: "'\\''"))' --version", timeoutSeconds: 60).runBlocking()
        if let version, version.status == 0 {
            report.add(.ok, "vela", "\(version.lastOutputLine) (\(vela))")
        } else {
            report.add(.warning, "vela", "'\(vela)' does not run (only the vela latency backend needs it)",
                       fix: "pip install ethos-u-vela (in a virtual environment), then put its vela on PATH or set \(VelaLatencyBackend.executableVariable)")
        }

        report.section("threads")
        report.add(.info, "cores", "\(ProcessInfo.processInfo.activeProcessorCount)")
        report.add(.info, "intra-op threads", "\(Torch.threadCount)")
        if Torch.ompWaitPolicy?.uppercased() == "PASSIVE" {
            report.add(.ok, "OMP_WAIT_POLICY", "PASSIVE")
        } else {
            report.add(.warning, "OMP_WAIT_POLICY", Torch.ompWaitPolicy ?? "unset (idle OpenMP workers spin and steal cores from other processes)",
                       fix: "export OMP_WAIT_POLICY=PASSIVE")
        }

        report.section("study storage")
        report.add(.ok, "SQLite", "built in (sqlite:///path/to/study.db)")
        report.add(.ok, "PostgreSQL client", "built in (postgresql://user:password@host:5432/database)")
        if let storage { await Self.checkStorage(storage, into: &report) }

        report.section("only for the tests and check scripts (scripts/install.sh --deps)")
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        report.add(chromium == nil ? .warning : .ok, "Chromium", chromium.map { "\($0) (no command needs it; the report and dashboard rendering tests do)" }
                       ?? "not found (no command needs it; the report and dashboard rendering tests do)",
                   fix: "apt-get install chromium")
        let pgCtl = "/usr/lib/postgresql/15/bin/pg_ctl"
        let hasServer = FileManager.default.isExecutableFile(atPath: pgCtl)
        report.add(hasServer ? .ok : .warning, "PostgreSQL server", hasServer ? "\(pgCtl) (scripts/test.sh starts a throwaway one)" : "not installed (the distributed-storage tests need one)",
                   fix: "apt-get install postgresql")

        print(report.rendered())
        if report.hasMissing || report.items.contains(where: { $0.name == "storage URL" && $0.state != .ok }) {
            throw ExitCode.failure
        }
    }

    /// Checks the storage named by `url`: connects to a PostgreSQL server, or checks that a
    /// SQLite file's folder exists and is writable (without creating the file).
    static func checkStorage(_ url: String, into report: inout DoctorReport) async {
        let parsed: StorageURL
        do {
            parsed = try StorageURL(url)
        } catch {
            report.add(.missing, "storage URL", "\(error)", fix: "see `edgenas init` for the URL forms")
            return
        }
        let shown = redactingPassword(in: url)
        switch parsed {
        case .memory:
            report.add(.ok, "storage URL", "\(shown): in-memory SQLite, private to one process")
        case .sqlite(let path):
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if FileManager.default.isWritableFile(atPath: directory) {
                report.add(.ok, "storage URL", "\(shown): folder \(directory) is writable")
            } else {
                report.add(.missing, "storage URL", "\(shown): folder \(directory) does not exist or is not writable",
                           fix: "mkdir -p \(directory), or choose another path")
            }
        case .postgres(let settings):
            do {
                let store = try await PostgresStorage(settings: settings)
                let version = try await store.schemaVersion()
                await store.close()
                report.add(.ok, "storage URL", "\(shown): connected to \(settings.host):\(settings.port), schema version \(version)")
            } catch {
                report.add(.missing, "storage URL", "\(shown): \(error)",
                           fix: "check that the server runs and accepts this user from this machine "
                               + "(pg_hba.conf, listen_addresses), that the database exists, and the password "
                               + "(`psql` with the same URL tells the same from the server's side)")
            }
        }
    }

    /// The path of a shared library mapped into this process, from /proc/self/maps (Linux).
    static func loadedLibraryPath(containing name: String) -> String? {
        // /proc files report size 0, so read them to the end rather than by their size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps"),
              let data = try? handle.readToEnd(), let maps = String(data: data, encoding: .utf8) else { return nil }
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            if path.contains(name) { return path }
        }
        return nil
    }
}
