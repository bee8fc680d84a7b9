import ArgumentParser
import DetectionData
import Foundation
import Torch
import Vision

/// Pretrained weights to start from (`--init`): fine-tuning instead of training from scratch.
struct PretrainedOptionGroup: ParsableArguments {
    @Option(name: .customLong("init"), help: ArgumentHelp(
        "Start from pretrained weights: an 'edgenas train' checkpoint directory, FastestDet's published .pth, or a ShuffleNetV2 0.5x backbone .pth (FastestDet's or torchvision's).",
        valueName: "path"))
    var path: String?

    @Option(help: "Class list of the --init checkpoint, one name a line (default: the one *.names file beside it).")
    var initClasses: String?

    /// The weights, inherited into detectors with `classNames`; nil without --init.
    func initialization(classNames: [String]) throws -> DetectorInitialization? {
        try path.map { try DetectorInitialization(path: $0, classNames: classNames, classNamesFile: initClasses) }
    }
}

/// The weights a command reads: a checkpoint directory written by `edgenas train`
/// (`--checkpoint`), or pretrained weights inherited into the architecture (`--init`).
struct CheckpointOptionGroup: ParsableArguments {
    @Option(help: "Checkpoint directory written by 'edgenas train'.")
    var checkpoint: String?

    @OptionGroup var pretrained: PretrainedOptionGroup

    @Flag(help: "Use the last training step's weights instead of their moving average.")
    var raw = false

    func validate() throws {
        guard (checkpoint == nil) != (pretrained.path == nil) else {
            throw ValidationError("give either --checkpoint (a directory written by 'edgenas train') or --init (pretrained weights)")
        }
    }

    /// The checkpoint's training state, or a clear error when the directory has none.
    func state(_ checkpoint: String) throws -> TrainingCheckpoint {
        guard let state = try TrainingCheckpoint.load(from: URL(fileURLWithPath: checkpoint)) else {
            throw ValidationError("\(checkpoint) has no \(TrainingCheckpoint.stateFile); pass a directory written by 'edgenas train'")
        }
        return state
    }

    /// The detector for `classNames` in evaluation mode, the file its weights are in (the
    /// latency backends load that file) and, with --init, the pretrained weights read. `architecture` overrides the one the checkpoint
    /// records; a training checkpoint's weights must fit it exactly (the error names both
    /// architectures and the first tensor that differs), while --init weights are inherited into
    /// it and its batch norms recalibrated on `recalibrationSet`'s images.
    func loadDetector(classNames: [String], architecture requested: DetectorArchitecture? = nil,
                      recalibrationSet: () throws -> any DetectionDataset) throws
        -> (detector: Detector, weights: URL, pretrained: PretrainedWeights?)
    {
        if let initialization = try pretrained.initialization(classNames: classNames) {
            let architecture = requested ?? initialization.sourceArchitecture
            let (detector, report) = try initialization.makeDetector(
                architecture, recalibratingOn: initialization.needsRecalibration(architecture) ? try recalibrationSet() : nil)
            print(String(format: "%@: inherited %.1f%% of its parameters from %@ (%@, %@)%@", detector.architecture.description,
                         100 * report.inheritedShare, initialization.weights.path, initialization.weights.format.description,
                         report.sourceArchitecture, report.freshClasses.isEmpty ? "" : "; fresh classes: \(report.freshClasses.joined(separator: ", "))"))
            let weights = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-init-\(UUID().uuidString).tensors")
            try detector.save(to: weights)
            return (detector, weights, initialization.weights)
        }
        let checkpoint = checkpoint!
        let state = try state(checkpoint)
        var architecture = try requested ?? DetectorArchitecture(shortName: state.architecture)
        architecture.classCount = classNames.count
        let detector = try Detector(architecture)
        let directory = URL(fileURLWithPath: checkpoint)
        let weights = directory.appendingPathComponent(raw ? TrainingCheckpoint.modelFile : state.deployedModelFile)
        do {
            try detector.load(from: weights)
        } catch let error as ModuleStateError {
            throw CheckpointMismatch(message: "\(weights.path) holds weights of \(state.architecture) (\(TrainingCheckpoint.stateFile)), "
                                     + "which do not fit \(architecture) with \(classNames.count) class(es): \(error)")
        }
        detector.eval()
        return (detector, weights, nil)
    }
}

/// Weights that do not fit the requested network: a problem with the files, not with the
/// command line, so it is reported without the usage text a `ValidationError` brings.
struct CheckpointMismatch: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
