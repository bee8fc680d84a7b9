import Foundation
import Testing
import Vision
@testable import Hardware

struct MeasurementLockTests {
    let path = NSTemporaryDirectory() + "edgenas-lock-test-\(UUID().uuidString)"

    @Test func aMeasurementExcludesAnotherMeasurementAndTraining() throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let held = try MeasurementLock(.measurement, path: path)
        #expect(throws: HardwareError.self) { try MeasurementLock(.measurement, path: path, timeout: 0.1) }
        #expect(throws: HardwareError.self) { try MeasurementLock(.training, path: path, timeout: 0.1) }
        held.release()
        let again = try MeasurementLock(.measurement, path: path, timeout: 0.1)
        again.release()
    }

    @Test func trainingsShareTheMachineButKeepMeasurementsOut() throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try MeasurementLock(.training, path: path)
        let second = try MeasurementLock(.training, path: path, timeout: 0.1)
        #expect(throws: HardwareError.self) { try MeasurementLock(.measurement, path: path, timeout: 0.1) }
        first.release()
        second.release()
        _ = try MeasurementLock(.measurement, path: path, timeout: 0.1)
    }
}

/// A single-thread measurement beside a process that burns a core stays within 20 % of an
/// idle one (the machine has at least two cores; libgomp waits passively, see Torch.swift).
/// Skipped on an overloaded machine, where other processes decide the times.
@Suite(.serialized, .enabled(if: MachineLoad.isQuiet, "the machine's load is above its core count"))
struct BusyNeighbourTests {
    @Test func aBusyNeighbourMovesTheMedianByLessThanTwentyPercent() throws {
        let policy = MeasurementPolicy(warmupRuns: 5, minimumRuns: 20, maximumRuns: 200, maximumSeconds: 2, stabilityWindow: 10,
                                       stabilityTolerance: 0.01)
        let backend = TorchFP32Backend(policy: policy, threads: 1, seed: 1)
        let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224")
        let idle = try backend.measure(architecture: architecture)

        let neighbour = Process()
        neighbour.executableURL = URL(fileURLWithPath: "/bin/sh")
        neighbour.arguments = ["-c", "while :; do :; done"]
        try neighbour.run()
        defer {
            // SIGKILL, not terminate(): the child inherits the test thread's signal mask, in
            // which SIGTERM may be blocked.
            kill(neighbour.processIdentifier, SIGKILL)
            neighbour.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.2)  // let the loop reach full speed
        let busy = try backend.measure(architecture: architecture)
        let change = (busy.median - idle.median) / idle.median
        #expect(abs(change) < 0.2, "idle median \(idle.median) ms, busy \(busy.median) ms (\(100 * change) %)")
    }
}

/// Whether timing tests can mean something here: the one-minute load average is below the
/// number of cores minus one (room for the test and one busy neighbour).
enum MachineLoad {
    static var isQuiet: Bool {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let load = text.split(separator: " ").first.flatMap({ Double($0) }) else { return true }
        return load < Double(max(1, ProcessInfo.processInfo.activeProcessorCount - 1))
    }
}
