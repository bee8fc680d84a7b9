import DetectionData
import Torch

/// INT8 post-training calibration: runs the float detector over calibration images node by
/// node and turns the observed activation ranges into `QuantizationParameters`.
public enum QuantizationCalibrator {
    /// How a node's output gets its activation grid.
    enum GridSource {
        /// Observed on calibration data (the image, convolutions, concatenations, additions:
        /// operations whose output range differs from their input's).
        case calibrated
        /// The input's grid (pooling, slicing, shuffling, upsampling keep the range).
        case inherited
        /// No grid: the detection output is computed in float.
        case float
    }

    static func gridSource(_ operation: GraphOperation) -> GridSource {
        switch operation {
        case .convolution, .concatenate, .add: .calibrated
        case .maxPool, .averagePool, .upsampleNearest, .channelSlice, .channelShuffle: .inherited
        case .detectionOutput: .float
        }
    }

    /// Calibrates `detector` (its current weights, evaluation mode) on `images`, each a float
    /// [N, 3, S, S] batch at the architecture's input size with values as the data pipeline
    /// makes them (0...1). Min-max takes one pass over the images; percentile two (extremes
    /// first, then a histogram between them).
    public static func calibrate(_ detector: Detector, images: [Tensor], options: CalibrationOptions = CalibrationOptions()) throws
        -> QuantizationParameters
    {
        try options.validate()
        guard !images.isEmpty else { throw QuantizationError.noCalibrationImages }
        detector.eval()
        let graph = detector.graph
        let observed = [DetectorGraph.inputName] + graph.nodes.filter { gridSource($0.operation) == .calibrated }.map(\.name)

        var minimum: [String: Double] = [:], maximum: [String: Double] = [:]
        var imageCount = 0
        try Torch.withNoGrad {
            for batch in images {
                imageCount += batch.shape.first ?? 0
                let outputs = try detector.outputs(batch)
                for name in observed {
                    let value = outputs[name]!
                    let low = try value.min().item(), high = try value.max().item()
                    minimum[name] = Swift.min(minimum[name] ?? low, low)
                    maximum[name] = Swift.max(maximum[name] ?? high, high)
                }
            }
        }

        var ranges: [String: (Double, Double)] = [:]
        switch options.method {
        case .minMax:
            for name in observed { ranges[name] = (minimum[name]!, maximum[name]!) }
        case .percentile:
            var histograms = Dictionary(uniqueKeysWithValues: observed.map {
                ($0, ValueHistogram(lower: minimum[$0]!, upper: maximum[$0]!, bins: options.histogramBins))
            })
            try Torch.withNoGrad {
                for batch in images {
                    let outputs = try detector.outputs(batch)
                    for name in observed { histograms[name]!.add(try outputs[name]!.floats()) }
                }
            }
            for name in observed {
                let histogram = histograms[name]!
                // An observed minimum of 0 or more (ReLU outputs) stays as it is: the range is
                // widened to contain 0 anyway, and clipping below 0 would gain nothing.
                let low = minimum[name]! >= 0 ? minimum[name]! : histogram.percentile(100 - options.percentile)!
                ranges[name] = (low, histogram.percentile(options.percentile)!)
            }
        }

        var activations: [String: ActivationQuantization] = [:]
        for (name, range) in ranges {
            activations[name] = ActivationQuantization(minimum: range.0, maximum: range.1, quantizedMaximum: options.activationMaximum)
        }
        for node in graph.nodes where gridSource(node.operation) == .inherited {
            activations[node.name] = activations[node.inputs[0]]!.asInherited
        }
        var weights: [String: WeightQuantization] = [:]
        for (name, folded) in try detector.foldedConvolutions() {
            weights[name] = WeightQuantization(weight: folded.weight, shape: folded.weightShape, perTensor: options.perTensorWeights)
        }
        return QuantizationParameters(architecture: detector.architecture.description, options: options,
                                      imageCount: imageCount, activations: activations, weights: weights)
    }

    /// Calibrates on `imageCount` images of `dataset` (all of them when it has fewer), drawn in
    /// a seeded shuffled order and letterboxed to the input size as evaluation does.
    public static func calibrate(
        _ detector: Detector, dataset: any DetectionDataset, imageCount: Int, options: CalibrationOptions = CalibrationOptions(),
        seed: UInt64 = 0, batchSize: Int = 8
    ) throws -> QuantizationParameters {
        guard imageCount >= 1, dataset.count >= 1 else { throw QuantizationError.noCalibrationImages }
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize,
                                 augmentation: .evaluation(at: detector.architecture),
                                 shuffle: true, seed: seed)
        var images: [Tensor] = []
        var remaining = Swift.min(imageCount, dataset.count)
        for index in 0..<loader.batchesPerEpoch where remaining > 0 {
            let batch = try loader.batch(epoch: 0, index: index)
            let tensor = try Tensor(batch.images, shape: detector.architecture.inputShape(batch: batch.batchSize))
            images.append(batch.batchSize <= remaining ? tensor : try tensor.narrow(dim: 0, start: 0, length: remaining))
            remaining -= Swift.min(batch.batchSize, remaining)
        }
        return try calibrate(detector, images: images, options: options)
    }
}

extension ConvolutionUnit {
    /// This unit's convolution with its batch norm (running statistics) folded in.
    public func folded() throws -> FoldedConvolution {
        let bn = normalization
        return try FoldedConvolution(
            weight: convolution.weight.tensor.floats(), weightShape: convolution.weight.tensor.shape,
            gamma: bn.weight.tensor.floats(), beta: bn.bias.tensor.floats(), mean: bn.runningMean.tensor.floats(),
            variance: bn.runningVar.tensor.floats(), eps: bn.eps)
    }
}

extension Detector {
    /// Every convolution node's folded weight and bias, keyed by node name.
    public func foldedConvolutions() throws -> [String: FoldedConvolution] {
        var result: [String: FoldedConvolution] = [:]
        for (name, module) in units {
            guard let unit = module as? ConvolutionUnit else { continue }
            result[name] = try unit.folded()
        }
        return result
    }
}
