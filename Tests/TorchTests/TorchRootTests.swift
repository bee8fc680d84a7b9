import Foundation
import Testing
import Torch

/// The libtorch a build uses is the one it was configured with: Debian's by default, the one
/// under TORCH_ROOT otherwise. scripts/test-torch-root.sh builds these tests against a second
/// libtorch (with Debian's installed too) and sets EDGENAS_EXPECTED_TORCH_VERSION and
/// EDGENAS_EXPECTED_TORCH_LIBRARY_DIR; without them (a plain `swift test`) the checks hold for
/// whatever libtorch is linked.
@Suite struct TorchRootTests {
    /// The directories of the libtorch_cpu and libc10 mapped into this process (Linux).
    static func loadedTorchDirectories() throws -> Set<String> {
        let maps = try String(decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd() ?? Data(), as: UTF8.self)
        var directories: Set<String> = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            let name = (path as NSString).lastPathComponent
            if name.hasPrefix("libtorch_cpu.so") || name.hasPrefix("libc10.so") || name.hasPrefix("libtorch.so") {
                directories.insert((path as NSString).deletingLastPathComponent)
            }
        }
        return directories
    }

    @Test func linksTheConfiguredLibtorchOnly() throws {
        let version = TorchLibrary.version
        #expect(!version.isEmpty)
        let environment = ProcessInfo.processInfo.environment
        if let expected = environment["EDGENAS_EXPECTED_TORCH_VERSION"], !expected.isEmpty {
            #expect(version.hasPrefix(expected), "libtorch \(version) is linked, \(expected) was configured")
        }
        #if os(Linux)
        let directories = try Self.loadedTorchDirectories()
        // One libtorch, never two mixed: libtorch, libtorch_cpu and libc10 from one folder.
        #expect(directories.count == 1, "libtorch libraries loaded from \(directories.sorted())")
        if let expected = environment["EDGENAS_EXPECTED_TORCH_LIBRARY_DIR"], !expected.isEmpty {
            let resolved = URL(fileURLWithPath: expected).resolvingSymlinksInPath().path
            #expect(directories.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == [resolved],
                    "libtorch libraries loaded from \(directories.sorted()), not \(resolved)")
        }
        #endif
    }

    /// INT8 latency needs a quantized engine; both Debian's libtorch and PyPI's CPU wheel have one.
    @Test func hasAQuantizedEngine() {
        let engines = TorchLibrary.supportedQuantizedEngines.filter { !["none", "noqengine"].contains($0.lowercased()) }
        #expect(!engines.isEmpty, "quantized engines: \(TorchLibrary.supportedQuantizedEngines)")
    }
}
