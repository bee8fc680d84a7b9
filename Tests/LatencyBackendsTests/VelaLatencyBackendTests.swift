import Foundation
import Hardware
import Testing
import Vision
@testable import LatencyBackends

struct VelaLatencyBackendTests {
    /// Vela 5.2's summary of the baseline's INT8 TFLite model on ethos-u65-256 (columns cut to
    /// those read) and the operator lines of its output.
    @Test func theReportIsReadFromVelasSummaryAndOutput() throws {
        let csv = """
            experiment,network,accelerator_configuration,inference_time,sram_memory_used,dram_memory_used,cycles_total
            default,model-int8,Ethos_U65_256,0.002316906,326.65625,1775.375,2316906
            """
        let output = "Total SRAM used                                326.66 KiB\nCPU operators = 7 (5.4%)\nNPU operators = 122 (94.6%)\n"
        let report = try VelaReport(summaryCSV: csv, standardOutput: output, accelerator: "ethos-u65-256", floatOperators: 6)
        #expect(report == VelaReport(accelerator: "ethos-u65-256", inferenceMilliseconds: 2.316906, cycles: 2_316_906, npuOperators: 122,
                                     cpuOperators: 7, floatOperators: 6, sramKiB: 326.65625, dramKiB: 1775.375))
        // One CPU operator beyond the float ones: an integer operator the NPU lacks.
        #expect(report.fallbackOperators == 1)
        #expect(throws: VelaError.unreadableReport(command: "vela", detail: "no 'CPU operators = N' line in its output")) {
            try VelaReport(summaryCSV: csv, standardOutput: "NPU operators = 122 (94.6%)", accelerator: "ethos-u65-256", floatOperators: 7)
        }
    }

    @Test func aMissingVelaIsNamedWithItsFix() throws {
        let backend = VelaLatencyBackend(accelerator: "ethos-u65-256", executable: "/nonexistent/vela")
        let error = #expect(throws: VelaError.self) { try backend.measure(architecture: try DetectorArchitecture(shortName: "k3-g8-c24-w224")) }
        #expect(error?.description.contains("pip install ethos-u-vela") == true)
    }

    /// The real compiler (the check scripts' environment has it): every operator of EdgeNAS's
    /// INT8 model but the float head and the input's quantization runs on the NPU.
    @Test(.enabled(if: velaExecutable != nil, "needs Vela: EDGENAS_PYTHON's environment (scripts/test.sh) or EDGENAS_VELA"))
    func velaCompilesAHeadSpaceMemberAndLeavesOnlyTheFloatHeadOnTheCPU() throws {
        let backend = VelaLatencyBackend(accelerator: "ethos-u65-256", executable: velaExecutable)
        let small = try backend.compile(try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
        let large = try backend.compile(try DetectorArchitecture(shortName: "k5-g1-c96-w320"))
        // Input QUANTIZE; DEQUANTIZE of the three branches, LOGISTIC, SOFTMAX, CONCATENATION.
        #expect(small.cpuOperators == 7 && large.cpuOperators == 7)
        #expect(small.floatOperators == 7 && small.fallbackOperators == 0 && large.fallbackOperators == 0)
        #expect(small.npuOperators > 100 && small.sramKiB > 0)
        #expect(small.inferenceMilliseconds > 0 && small.inferenceMilliseconds < large.inferenceMilliseconds)
        let measured = try backend.measure(architecture: try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
        #expect(measured.median == small.inferenceMilliseconds && measured.backend == "vela-ethos-u65-256")
        #expect(measured.npu == NPUMapping(npuOperators: small.npuOperators, cpuOperators: 7, floatOperators: 7, sramKiB: small.sramKiB))
    }
}

/// Vela named by EDGENAS_VELA, or the one beside the check scripts' Python.
let velaExecutable: String? = {
    let environment = ProcessInfo.processInfo.environment
    if let vela = environment[VelaLatencyBackend.executableVariable], !vela.isEmpty { return vela }
    guard let python = environment["EDGENAS_PYTHON"] else { return nil }
    let vela = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("vela").path
    return FileManager.default.isExecutableFile(atPath: vela) ? vela : nil
}()
