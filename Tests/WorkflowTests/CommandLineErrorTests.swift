import Testing

/// Command-line mistakes end in a usage error that names the option, not in a crash.
@Suite(.serialized)
struct CommandLineErrorTests {
    @Test func nonPositiveSizesAreUsageErrors() throws {
        let train = try DoctorCommandTests.edgenas(["train", "--data", "/nonexistent", "--batch-size", "0"])
        #expect(train.status == 64, "\(train.output)")
        #expect(train.output.contains("--batch-size must be at least 1, got 0"), "\(train.output)")
        let select = try DoctorCommandTests.edgenas(["select-estimator", "--data", "/nonexistent", "--proxy-batch-size", "0"])
        #expect(select.status == 64 && select.output.contains("--proxy-batch-size must be at least 1, got 0"), "\(select.output)")
    }

    @Test func aPredictorSampleLargerThanTheSpaceIsAUsageError() throws {
        let run = try DoctorCommandTests.edgenas(["latency", "fit-predictor", "--count", "100000", "--output", "/nonexistent/predictor.json"])
        #expect(run.status == 64, "\(run.output)")
        #expect(run.output.contains("but the head space has only 8080 architectures"), "\(run.output)")
    }

    /// The config's `latency.backend` grammar works on the command line too.
    @Test func latencyMeasureTakesTheConfigsSpecs() throws {
        let run = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "int8", "k3-g8-c24-w224"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("k3-g8-c24-w224\ttorch-int8"), "\(run.output)")
        let wrong = try DoctorCommandTests.edgenas(["latency", "measure", "--latency", "int8 tpu"])
        #expect(wrong.status == 64 && wrong.output.contains("one of this libtorch's engines"), "\(wrong.output)")
    }
}
