import ArgumentParser
import Foundation
import Torch

/// Checks the installation: which libtorch is linked and from where, which INT8 engines it
/// has, how it will use threads, and which study storages are available.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: "Check the installation: libtorch, INT8 engines, threads, storage.")

    func run() throws {
        var problems: [String] = []
        print("EdgeNAS \(EdgeNAS.configuration.version)")
        print("")
        print("libtorch")
        print("  version            \(TorchLibrary.version)")
        print("  library            \(loadedLibraryPath(containing: "libtorch_cpu") ?? "not found in /proc/self/maps")")
        let engines = TorchLibrary.supportedQuantizedEngines.filter { !["none", "noqengine"].contains($0.lowercased()) }
        print("  quantized engines  \(engines.isEmpty ? "none" : engines.joined(separator: ", "))")
        if engines.isEmpty { problems.append("libtorch has no quantized engine: INT8 latency cannot be measured in-process") }
        print("")
        print("threads")
        print("  cores              \(ProcessInfo.processInfo.activeProcessorCount)")
        print("  intra-op threads   \(Torch.threadCount)")
        let policy = Torch.ompWaitPolicy ?? "unset (OpenMP workers spin)"
        print("  OMP_WAIT_POLICY    \(policy)")
        if Torch.ompWaitPolicy?.uppercased() != "PASSIVE" {
            problems.append("OMP_WAIT_POLICY is not PASSIVE: idle OpenMP workers spin and steal cores from other processes")
        }
        print("")
        print("study storage")
        print("  SQLite             built in (sqlite:///path/to/study.db)")
        print("  PostgreSQL         built in client (postgresql://user:password@host:5432/database)")
        print("")
        if problems.isEmpty {
            print("OK: ready to search.")
        } else {
            for problem in problems { print("warning: \(problem)") }
        }
    }

    /// The path of a shared library mapped into this process, from /proc/self/maps (Linux).
    private func loadedLibraryPath(containing name: String) -> String? {
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
