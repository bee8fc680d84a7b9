import Foundation
import Testing
import Torch
import Vision

/// Scale/zero-point arithmetic, histogram percentiles and batch-norm folding against values
/// worked out by hand; calibration of a small detector against its observed node outputs.
struct QuantizationArithmeticTests {
    @Test func activationGridsFollowPyTorchsAffineRule() {
        // [-1, 3]: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64.
        let mixed = ActivationQuantization(minimum: -1, maximum: 3)
        #expect(abs(mixed.scale - 4.0 / 255) < 1e-15 && mixed.zeroPoint == 64)
        // [0.5, 2] is widened to [0, 2] so zero is exact: zero point 0.
        let positive = ActivationQuantization(minimum: 0.5, maximum: 2)
        #expect(abs(positive.scale - 2.0 / 255) < 1e-15 && positive.zeroPoint == 0 && positive.minimum == 0)
        // [-2, -1] is widened to [-2, 0]: zero point 255.
        let negative = ActivationQuantization(minimum: -2, maximum: -1)
        #expect(abs(negative.scale - 2.0 / 255) < 1e-15 && negative.zeroPoint == 255)
        // 7-bit range: [0, 127 * 0.5] has scale 0.5.
        let reduced = ActivationQuantization(minimum: 0, maximum: 63.5, quantizedMaximum: 127)
        #expect(reduced.scale == 0.5 && reduced.zeroPoint == 0)
        // Half-way zero points round to even like torch.round: [-0.5, 254.5] has scale 1, 0.5 -> 0.
        let tie = ActivationQuantization(minimum: -0.5, maximum: 254.5)
        #expect(tie.scale == 1 && tie.zeroPoint == 0)
    }

    @Test func weightScalesAreTheChannelMaximumOver127() {
        // Two output channels of two values each; the third channel is all zero.
        let scales = WeightQuantization(weight: [1, -3, 0.5, 0.25, 0, 0], shape: [3, 1, 1, 2]).scales
        let expected: [Double] = [3.0 / 127, 0.5 / 127, 1]
        #expect(scales == expected)
        // Per tensor: every channel on the whole weight's scale.
        let perTensor = WeightQuantization(weight: [1, -3, 0.5, 0.25, 0, 0], shape: [3, 1, 1, 2], perTensor: true).scales
        #expect(perTensor == Array(repeating: 3.0 / 127, count: 3))
    }

    /// Calibration files written before per-tensor weights existed read as per channel.
    @Test func optionsWithoutTheWeightGranularityArePerChannel() throws {
        let old = #"{"method": "minmax", "percentile": 99.99, "histogramBins": 2048, "reduceRange": false}"#
        let options = try JSONDecoder().decode(CalibrationOptions.self, from: Data(old.utf8))
        #expect(options == CalibrationOptions() && !options.perTensorWeights)
        let perTensor = CalibrationOptions(perTensorWeights: true)
        #expect(try JSONDecoder().decode(CalibrationOptions.self, from: JSONEncoder().encode(perTensor)) == perTensor)
    }

    @Test func histogramPercentilesInterpolateInsideTheBin() {
        // 0, 1, ..., 99 in 100 bins of width 1 over [0, 100): one value per bin.
        var histogram = ValueHistogram(lower: 0, upper: 100, bins: 100)
        histogram.add((0..<100).map(Float.init))
        #expect(histogram.total == 100)
        #expect(histogram.percentile(90) == 90)  // the 90th value ends bin 89 at 90
        #expect(histogram.percentile(50) == 50)
        #expect(histogram.percentile(99.5) == 99.5)  // half-way through the last bin
        #expect(histogram.percentile(0) == 0)
    }

    @Test func aPercentileClipsARareOutlierThatMinMaxKeeps() throws {
        // 999 values of 1 and one of 1000, 999 bins of width 1 over [1, 1000]: the 99.85th
        // percentile (target 998.5 values) lies 998.5/999 of the way through the first bin.
        var values = [Float](repeating: 1, count: 999)
        values.append(1000)
        var histogram = ValueHistogram(lower: 1, upper: 1000, bins: 999)
        histogram.add(values)
        #expect(histogram.counts[0] == 999 && histogram.counts[998] == 1)
        #expect(abs(try #require(histogram.percentile(99.85)) - (1 + 998.5 / 999)) < 1e-9)
        #expect(try #require(histogram.percentile(100)) == 1000)
    }

    @Test func batchNormFoldsIntoWeightAndBias() throws {
        // s = 3 / sqrt(3 + 1) = 1.5: weight 2 -> 3, bias 1 - 0.5 * 1.5 = 0.25.
        let folded = try FoldedConvolution(weight: [2], weightShape: [1, 1, 1, 1], gamma: [3], beta: [1], mean: [0.5],
                                           variance: [3], eps: 1)
        #expect(folded.weight == [3] && folded.bias == [0.25])
        #expect(throws: QuantizationError.self) {
            try FoldedConvolution(weight: [1, 2], weightShape: [2, 1, 1, 1], gamma: [1], beta: [0], mean: [0], variance: [1], eps: 1e-5)
        }
    }

    @Test func invalidOptionsNameTheField() {
        #expect(throws: QuantizationError.invalidSetting("percentile", value: "40.0", expected: "a percentile in (50, 100]")) {
            try CalibrationOptions(method: .percentile, percentile: 40).validate()
        }
    }
}

/// Sets a unit's batch-norm statistics and affine values to seeded non-trivial numbers, so
/// folding has something to fold.
func randomizeBatchNorms(_ detector: Detector, seed: UInt64) throws {
    let generator = try Generator(seed: seed)
    for (_, module) in detector.units {
        guard let unit = module as? ConvolutionUnit else { continue }
        let bn = unit.normalization
        let channels = bn.weight.tensor.shape[0]
        try bn.weight.tensor.assign(Tensor.uniform([channels], low: 0.5, high: 1.5, generator: generator))
        try bn.bias.tensor.assign(Tensor.uniform([channels], low: -0.2, high: 0.2, generator: generator))
        try bn.runningMean.tensor.assign(Tensor.uniform([channels], low: -0.3, high: 0.3, generator: generator))
        try bn.runningVar.tensor.assign(Tensor.uniform([channels], low: 0.5, high: 2, generator: generator))
    }
}

struct CalibrationTests {
    func makeDetector() throws -> Detector {
        let detector = try Torch.seeded(11) { try Detector(tinyArchitecture) }
        try randomizeBatchNorms(detector, seed: 5)
        detector.eval()
        return detector
    }

    func images(_ count: Int, seed: UInt64) throws -> [Tensor] {
        let side = tinyArchitecture.inputWidth
        return try (0..<count).map { try Tensor.uniform([1, 3, side, side], generator: Generator(seed: seed + UInt64($0))) }
    }

    @Test func foldedConvolutionsReproduceConvPlusBatchNorm() throws {
        let detector = try makeDetector()
        let folded = try detector.foldedConvolutions()
        let input = try Tensor.normal([2, 8, 9, 9], generator: Generator(seed: 3))
        for (name, module) in detector.units {
            let unit = try #require(module as? ConvolutionUnit)
            guard unit.spec.inputChannels == 8 else { continue }
            let conv = try #require(folded[name])
            let spec = unit.spec
            let weight = try Tensor(conv.weight, shape: conv.weightShape), bias = try Tensor(conv.bias)
            var output = try Functional.conv2d(input, weight: weight, bias: bias, stride: (spec.stride, spec.stride),
                                               padding: (spec.padding, spec.padding), groups: spec.groups)
            if spec.relu { output = try output.relu() }
            let reference = try Torch.withNoGrad { try unit(input) }
            let difference = try (output - reference).abs().max().item()
            // Float rounding only: the folded weight is rounded to Float once.
            #expect(difference < 1e-5, "\(name): max |folded - conv+bn| = \(difference)")
        }
    }

    @Test func minMaxGridsCoverTheObservedRanges() throws {
        let detector = try makeDetector()
        let batches = try images(3, seed: 40)
        let parameters = try QuantizationCalibrator.calibrate(detector, images: batches, options: CalibrationOptions(method: .minMax))
        #expect(parameters.imageCount == 3 && parameters.architecture == tinyArchitecture.description)

        // The image grid from its own extremes.
        let imageLow = try batches.map { try $0.min().item() }.min()!, imageHigh = try batches.map { try $0.max().item() }.max()!
        #expect(try parameters.activation(DetectorGraph.inputName) == ActivationQuantization(minimum: imageLow, maximum: imageHigh))

        // Every calibrated node from the extremes of its outputs over the three images.
        let outputs = try Torch.withNoGrad { try batches.map { try detector.outputs($0) } }
        for node in detector.graph.nodes {
            switch node.operation {
            case .convolution, .concatenate, .add:
                let low = try outputs.map { try $0[node.name]!.min().item() }.min()!
                let high = try outputs.map { try $0[node.name]!.max().item() }.max()!
                #expect(try parameters.activation(node.name) == ActivationQuantization(minimum: low, maximum: high), "\(node.name)")
            case .detectionOutput:
                #expect(parameters.activations[node.name] == nil)
            default:
                let inherited = try parameters.activation(node.name)
                let source = try parameters.activation(node.inputs[0])
                #expect(inherited.inherited && inherited.scale == source.scale && inherited.zeroPoint == source.zeroPoint, "\(node.name)")
            }
        }

        // Weight scales from the folded weights.
        let folded = try detector.foldedConvolutions()
        #expect(Set(parameters.weights.keys) == Set(folded.keys))
        let stem = try #require(folded["stem.conv"])
        let perChannel = stem.weight.count / stem.weightShape[0]
        let firstMax = stem.weight[0..<perChannel].map { abs($0) }.max()!
        #expect(try parameters.weight("stem.conv").scales[0] == Double(firstMax) / 127)
    }

    @Test func percentileGridsAreInsideTheMinMaxOnes() throws {
        let detector = try makeDetector()
        let batches = try images(2, seed: 70)
        let minMax = try QuantizationCalibrator.calibrate(detector, images: batches, options: CalibrationOptions(method: .minMax))
        let percentile = try QuantizationCalibrator.calibrate(
            detector, images: batches, options: CalibrationOptions(method: .percentile, percentile: 99.9, histogramBins: 512))
        #expect(Set(minMax.activations.keys) == Set(percentile.activations.keys))
        var narrower = 0
        for (name, grid) in percentile.activations {
            let wide = minMax.activations[name]!
            #expect(grid.minimum >= wide.minimum - 1e-9 && grid.maximum <= wide.maximum + 1e-9, "\(name)")
            if grid.maximum < wide.maximum * 0.999 { narrower += 1 }
        }
        #expect(narrower > 0)  // clipping the top 0.1 % narrows some ranges
    }

    @Test func parametersRoundTripThroughJSON() throws {
        let detector = try makeDetector()
        let parameters = try QuantizationCalibrator.calibrate(detector, images: try images(1, seed: 1))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qparams-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try parameters.write(to: url)
        #expect(try QuantizationParameters(contentsOf: url) == parameters)
    }

    @Test func noImagesIsAnError() throws {
        #expect(throws: QuantizationError.noCalibrationImages) {
            try QuantizationCalibrator.calibrate(try makeDetector(), images: [])
        }
    }
}
