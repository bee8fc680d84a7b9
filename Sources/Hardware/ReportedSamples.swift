extension TimedSamples {
    /// Samples timed outside this process's harness: printed by an external benchmark
    /// command, returned by a board's agent, or a predictor's estimate. Other modules build
    /// their `LatencyMeasurement`s from these (the memberwise initialiser is internal).
    public init(reported milliseconds: [Double], stopReason: StopReason) {
        self.milliseconds = milliseconds
        self.stopReason = stopReason
    }
}
