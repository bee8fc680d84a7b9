import DetectionData
import Foundation
import Torch

/// Where every network of a run starts when it is not trained from scratch: pretrained weights
/// (`training.init`, `--init`) inherited into its architecture, with its batch-norm statistics
/// recalibrated on training images when its layers differ from the pretrained network's.
///
/// `@unchecked Sendable`: the pretrained tensors are only read after loading.
public final class DetectorInitialization: @unchecked Sendable {
    public let weights: PretrainedWeights
    /// The classes the detectors detect, in output order (matched by name against the checkpoint's).
    public let classNames: [String]
    /// Training images the batch-norm statistics are re-estimated on.
    public let recalibrationImages: Int

    public init(weights: PretrainedWeights, classNames: [String], recalibrationImages: Int = 256) {
        self.weights = weights
        self.classNames = classNames
        self.recalibrationImages = recalibrationImages
    }

    /// Reads the checkpoint at `path` (see `PretrainedWeights.load`).
    public convenience init(path: String, classNames: [String], classNamesFile: String? = nil, recalibrationImages: Int = 256) throws {
        self.init(weights: try PretrainedWeights.load(from: path, classNamesFile: classNamesFile), classNames: classNames,
                  recalibrationImages: recalibrationImages)
    }

    /// A detector of `architecture` (its class count set to `classNames`) holding the inherited
    /// weights, in evaluation mode. Its batch norms are recalibrated on `trainingSet` unless the
    /// network is the pretrained one, whose statistics still fit.
    public func makeDetector(_ architecture: DetectorArchitecture, recalibratingOn trainingSet: (any DetectionDataset)?) throws
        -> (detector: Detector, report: InheritanceReport)
    {
        var architecture = architecture
        architecture.classCount = classNames.count
        let detector = try Detector(architecture)
        let report = try WeightInheritance.inherit(weights, into: detector, classNames: classNames)
        if let trainingSet, needsRecalibration(architecture) {
            try BatchNormRecalibration.recalibrate(detector, on: trainingSet, images: recalibrationImages)
        }
        detector.eval()
        return (detector, report)
    }

    /// Whether `architecture`'s layers differ from the pretrained network's (the class count and
    /// input size aside: they change no layer's channels, and statistics from the pretrained
    /// network's large training set beat those of a few hundred images).
    public func needsRecalibration(_ architecture: DetectorArchitecture) -> Bool {
        var source = weights.architecture, target = architecture
        (source.classCount, source.inputWidthPixels) = (1, 320)
        (target.classCount, target.inputWidthPixels) = (1, 320)
        return source != target || weights.format == .fastestDetBackbone || weights.format == .torchvisionBackbone
    }

    /// The default architecture to evaluate or fine-tune the weights as: the pretrained network
    /// itself with the run's classes (the baseline for a backbone-only checkpoint).
    public var sourceArchitecture: DetectorArchitecture {
        var architecture = weights.architecture
        architecture.classCount = classNames.count
        return architecture
    }
}
