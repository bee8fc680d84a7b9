import ArgumentParser
import Foundation
import Torch
import Vision

/// The trained weights a command reads: a checkpoint directory written by `edgenas train`.
struct CheckpointOptionGroup: ParsableArguments {
    @Option(help: "Checkpoint directory written by 'edgenas train'.")
    var checkpoint: String

    @Flag(help: "Use the last training step's weights instead of their moving average.")
    var raw = false

    var directory: URL { URL(fileURLWithPath: checkpoint) }

    /// The checkpoint's training state, or a clear error when the directory has none.
    func state() throws -> TrainingCheckpoint {
        guard let state = try TrainingCheckpoint.load(from: directory) else {
            throw ValidationError("\(checkpoint) has no \(TrainingCheckpoint.stateFile); pass a directory written by 'edgenas train'")
        }
        return state
    }

    /// The weights file to load: the moving average when training kept one, unless --raw.
    func weightsFile(_ state: TrainingCheckpoint) -> URL {
        directory.appendingPathComponent(raw || state.configuration.emaDecay == nil ? TrainingCheckpoint.modelFile : TrainingCheckpoint.averageFile)
    }

    /// The trained detector with `classCount` classes in evaluation mode. `architecture`
    /// overrides the one the checkpoint records; weights that do not fit it fail with an error
    /// naming both architectures and the first tensor that differs.
    func loadDetector(classCount: Int, architecture requested: DetectorArchitecture? = nil) throws -> (detector: Detector, weights: URL) {
        let state = try state()
        var architecture = try requested ?? DetectorArchitecture(shortName: state.architecture)
        architecture.classCount = classCount
        let detector = try Detector(architecture)
        let weights = weightsFile(state)
        do {
            try detector.load(from: weights)
        } catch let error as ModuleStateError {
            throw CheckpointMismatch(message: "\(weights.path) holds weights of \(state.architecture) (\(TrainingCheckpoint.stateFile)), "
                                     + "which do not fit \(architecture) with \(classCount) class(es): \(error)")
        }
        detector.eval()
        return (detector, weights)
    }
}

/// Weights that do not fit the requested network: a problem with the files, not with the
/// command line, so it is reported without the usage text a `ValidationError` brings.
struct CheckpointMismatch: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
