import ArgumentParser
import Foundation
import Hardware
import LatencyBackends
import Vision

/// `edgenas latency`: measures architectures through any latency backend, and fits
/// predictors from measurements.
struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Measure latency through a backend (int8, fp32, onnxruntime, agent, command, predictor, vela) or fit a latency predictor.",
        subcommands: [LatencyMeasureCommand.self, LatencyFitCommand.self])
}

/// Options shared by the latency subcommands: which backend and how to reach it.
struct LatencyBackendOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The latency backend: \(LatencyBackendSpec.grammar) (see docs/hardware-agent.md).", valueName: "spec"))
    var latency = "int8"

    @OptionGroup var threading: MeasurementThreadsOption

    @Option(help: "Token of the agent (default: $\(AgentProtocol.tokenEnvironmentVariable)).")
    var agentToken: String?

    @Option(help: "Seconds to wait for one answer of the agent, including its queue.")
    var agentTimeout = 600.0

    @Option(help: "Tries per measurement on the agent.")
    var agentAttempts = 3

    @Option(help: "Seconds after which a benchmark command is stopped.")
    var commandTimeout = 300.0

    @Option(help: "Precision of the model an agent or a benchmark command ({model}) gets: int8 or fp32.")
    var deployedPrecision = ONNXRuntimeBackend.Precision.int8.rawValue

    @Option(help: "Format of that model: onnx (INT8 as QDQ) or tflite (full-integer INT8, for a board that runs LiteRT).")
    var deployedFormat = DeployedModel.Format.onnx.rawValue

    func validate() throws {
        guard ONNXRuntimeBackend.Precision(rawValue: deployedPrecision) != nil else {
            throw ValidationError("--deployed-precision must be int8 or fp32, not '\(deployedPrecision)'")
        }
        guard DeployedModel.Format(rawValue: deployedFormat) != nil else {
            throw ValidationError("--deployed-format must be onnx or tflite, not '\(deployedFormat)'")
        }
    }

    func makeBackend() throws -> any LatencyBackend {
        let spec: LatencyBackendSpec
        do { spec = try LatencyBackendSpec(parsing: latency) } catch { throw ValidationError(error.description) }
        return try spec.makeBackend(LatencyBackendSettings(
            threads: threading.threads, agentToken: agentToken, requestTimeoutSeconds: agentTimeout, attempts: agentAttempts,
            commandTimeoutSeconds: commandTimeout, deployedPrecision: ONNXRuntimeBackend.Precision(rawValue: deployedPrecision) ?? .int8,
            deployedFormat: DeployedModel.Format(rawValue: deployedFormat) ?? .onnx))
    }
}

struct LatencyMeasureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure", abstract: "Measure architectures and print median, spread and samples.")

    @OptionGroup var backend: LatencyBackendOptions

    @Flag(help: "Print each measurement as one JSON line instead of a table row.")
    var json = false

    @Option(help: ArgumentHelp(
        "Time each architecture in alternating runs with this one and print its latency as a ratio to it (in-process backends: int8, fp32, onnxruntime).",
        discussion: "The ratio cancels the machine's state, which on a shared or virtual machine changes for seconds at a time.",
        valueName: "arch"))
    var against: String?

    @Argument(help: "Architecture short names (default: the baseline).")
    var names: [String] = [DetectorArchitecture.baseline.description]

    func run() throws {
        let latencyBackend = try backend.makeBackend()
        if let against {
            guard let inProcess = latencyBackend as? any InProcessLatencyBackend else {
                throw ValidationError("--against needs a backend that runs in this process (int8, fp32 or onnxruntime), not '\(backend.latency)'")
            }
            try measurePaired(inProcess, reference: try DetectorArchitecture(shortName: against))
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // An NPU compiler's backend (vela) also says how the network was mapped.
        let npu = latencyBackend is VelaLatencyBackend
        if !json { print("architecture\tbackend\tmedian_ms\tiqr_ms\tmin_ms\truns" + (npu ? "\tnpu_ops\tcpu_ops\tfallback_ops\tsram_kib" : "")) }
        var failures = 0
        for name in names {
            let architecture = try DetectorArchitecture(shortName: name)
            do {
                let measurement = try latencyBackend.measure(architecture: architecture)
                if json {
                    print(String(decoding: try encoder.encode(measurement), as: UTF8.self))
                } else {
                    let mapping = measurement.npu.map { String(format: "\t%d\t%d\t%d\t%.1f", $0.npuOperators, $0.cpuOperators, $0.fallbackOperators, $0.sramKiB) } ?? ""
                    print(String(format: "%@\t%@\t%.3f\t%.3f\t%.3f\t%d", measurement.architecture, measurement.backend, measurement.median,
                                 measurement.interquartileRange, measurement.minimum, measurement.samplesMilliseconds.count) + mapping)
                }
            } catch {
                // One architecture failing (a board that stopped answering) does not stop the rest.
                failures += 1
                FileHandle.standardError.write(Data("edgenas latency: \(architecture): \(error)\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func measurePaired(_ latencyBackend: any InProcessLatencyBackend, reference: DetectorArchitecture) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if !json { print("architecture\treference\tbackend\tratio\tratio_iqr\tchange_pct\tmedian_ms\treference_median_ms\trounds") }
        for name in names {
            let measurement = try latencyBackend.measure(try DetectorArchitecture(shortName: name), against: reference)
            if json {
                print(String(decoding: try encoder.encode(measurement), as: UTF8.self))
            } else {
                print(String(format: "%@\t%@\t%@\t%.4f\t%.4f\t%+.1f\t%.3f\t%.3f\t%d", measurement.candidate.architecture, reference.description,
                             measurement.candidate.backend, measurement.ratio.median, measurement.ratio.interquartileRange,
                             (measurement.ratio.median - 1) * 100, measurement.candidate.median, measurement.reference.median, measurement.ratios.count))
            }
        }
    }
}

struct LatencyFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit-predictor",
        abstract: "Measure random head-space architectures through a backend and fit a latency predictor to them.",
        discussion: """
        Architectures are drawn from the head space (kernel 3/5, groups 1/2/4/8, channels 24..96, \
        width 220..320). The first --count are fit; the next --held-out are predicted and reported \
        (share within +-10 %, RMSE). With --latency 'agent URL' the predictor learns the board.
        """)

    @OptionGroup var backend: LatencyBackendOptions

    @Option(help: "Architectures to fit on.")
    var count = 60

    @Option(help: "Further architectures to check the fit on.")
    var heldOut = 20

    @Option(help: "Seed of the architecture draw.")
    var seed: UInt64 = 0

    @Option(help: "Where to write the predictor (JSON).")
    var output: String

    func run() throws {
        guard count >= 2, heldOut >= 0 else { throw ValidationError("expected --count >= 2 and --held-out >= 0") }
        guard count + heldOut <= DetectorHeadSpace.seed.size else {
            throw ValidationError("--count + --held-out is \(count + heldOut), but the head space has only \(DetectorHeadSpace.seed.size) architectures")
        }
        let latencyBackend = try backend.makeBackend()
        let architectures = try DetectorHeadSpace.seed.sample(count + heldOut, seed: seed)
        var rows: [ArchitectureLatency] = []
        for (index, architecture) in architectures.enumerated() {
            rows.append(ArchitectureLatency(architecture: architecture, milliseconds: try latencyBackend.measure(architecture: architecture).median))
            FileHandle.standardError.write(Data("measured \(index + 1)/\(architectures.count): \(architecture) \(rows[index].milliseconds) ms\n".utf8))
        }
        let predictor = try LatencyPredictor.fit(Array(rows[..<count]), backend: latencyBackend.name, threads: backend.threading.threads)
        try predictor.save(to: URL(fileURLWithPath: output))
        print(String(format: "fit on %d architectures: training RMSE %.3f ms; wrote %@", count, predictor.trainingRMSE, output))
        if heldOut > 0 {
            let accuracy = try predictor.accuracy(on: Array(rows[count...]))
            print(String(format: "held out %d: %.1f %% within +-10 %%, RMSE %.3f ms, mean relative error %.1f %%", accuracy.count,
                         accuracy.withinTenPercent * 100, accuracy.rmse, accuracy.meanAbsolutePercentageError * 100))
        }
    }
}
