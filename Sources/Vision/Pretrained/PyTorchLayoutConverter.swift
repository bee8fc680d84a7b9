import Torch

/// Renames (and, for Megvii's ShuffleNetV2, reorders) the tensors of a PyTorch state dict into
/// EdgeNAS's `Detector` names and channel order. Each of EdgeNAS's convolution units is a
/// convolution followed by batch norm; in PyTorch's `nn.Sequential` the pair sits at two
/// consecutive indices, so a unit is named by its convolution's key prefix and index.
struct PyTorchLayoutConverter {
    let state: [String: Tensor]
    let path: String

    private static let batchNormFields = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]

    func convert(_ format: CheckpointFormat) throws -> (DetectorArchitecture, [String: Tensor]) {
        switch format {
        case .fastestDet: try fastestDet()
        case .fastestDetBackbone: (.baseline, try checked(megviiBackbone(prefix: "").tensors, against: .baseline))
        case .torchvisionBackbone: (.baseline, try checked(torchvisionBackbone(), against: .baseline))
        case .edgenas: preconditionFailure("EdgeNAS checkpoints need no conversion")
        }
    }

    private func tensor(_ key: String) throws -> Tensor {
        guard let tensor = state[key] else { throw PretrainedWeightsError.missingTensor(path: path, key: key) }
        return tensor
    }

    /// Copies one convolution + batch-norm unit: the convolution at `sequence.index`, its batch
    /// norm at `sequence.(index + 1)`. Output rows are picked by `rows`, input columns by
    /// `columns` (nil: as stored). A tensor too small for them fails naming its key.
    private func unit(_ node: String, from sequence: String, at index: Int, rows: [Int]? = nil, columns: [Int]? = nil,
                      into result: inout [String: Tensor]) throws {
        func pick(_ key: String, _ tensor: Tensor, dim: Int, _ indices: [Int]?) throws -> Tensor {
            guard let indices else { return tensor }
            let shape = tensor.shape
            guard shape.count > dim, shape[dim] > indices.max() ?? -1 else {
                var expected = shape.count > dim ? shape : shape + [Int](repeating: 1, count: dim + 1 - shape.count)
                expected[dim] = indices.count
                throw PretrainedWeightsError.shapeMismatch(path: path, key: key, expected: expected, found: shape)
            }
            return try tensor.indexSelect(dim: dim, index: Tensor(indices.map(Int64.init), shape: [indices.count]))
        }
        let weightKey = "\(sequence).\(index).weight"
        result["\(node).conv.weight"] = try pick(weightKey, pick(weightKey, tensor(weightKey), dim: 0, rows), dim: 1, columns)
        for field in Self.batchNormFields {
            let key = "\(sequence).\(index + 1).\(field)"
            result["\(node).bn.\(field)"] = try pick(key, tensor(key), dim: 0, field == "num_batches_tracked" ? nil : rows)
        }
    }

    /// Megvii's ShuffleNetV2 (FastestDet's `first_conv`, `stageN.K.branch_proj/branch_main`) in
    /// EdgeNAS's torchvision layout. The stem's input channels are swapped from BGR (FastestDet
    /// reads OpenCV images) to EdgeNAS's RGB; both scale pixels to [0, 1].
    /// Also returns each stage's output order (EdgeNAS channel i is Megvii channel `order[i]`).
    private func megviiBackbone(prefix: String) throws -> (tensors: [String: Tensor], stageOutputs: [[Int]]) {
        var result: [String: Tensor] = [:]
        try unit("stem.conv", from: "\(prefix)first_conv", at: 0, columns: [2, 1, 0], into: &result)
        let base = DetectorArchitecture.baseline
        var inputChannels = Array(0..<base.stemChannels)  // EdgeNAS stage input channel i is Megvii channel inputChannels[i]
        var stageOutputs: [[Int]] = []
        for (stage, (channels, units)) in zip(base.stageChannels, base.stageRepeats).enumerated() {
            let name = "stage\(stage + 2)", source = "\(prefix)stage\(stage + 2)"
            let order = try ShuffleNetChannelOrder(half: channels / 2, units: units)
            for index in 0..<units {
                let main = "\(source).\(index).branch_main", target = "\(name).unit\(index)"
                if index == 0 {
                    // Depthwise: its channels follow the stage input's order.
                    try unit("\(target).branch1.dw", from: "\(source).0.branch_proj", at: 0, rows: inputChannels, into: &result)
                    try unit("\(target).branch1.pw", from: "\(source).0.branch_proj", at: 2, rows: order.projectionRows,
                             columns: inputChannels, into: &result)
                }
                try unit("\(target).branch2.pw1", from: main, at: 0, columns: index == 0 ? inputChannels : order.mainColumns[index], into: &result)
                try unit("\(target).branch2.dw", from: main, at: 3, into: &result)
                try unit("\(target).branch2.pw2", from: main, at: 5, rows: order.mainRows[index], into: &result)
            }
            inputChannels = order.outputChannels
            stageOutputs.append(order.outputChannels)
        }
        return (result, stageOutputs)
    }

    /// FastestDet's detector: Megvii backbone, `SPP.*` (EdgeNAS's neck reduction and SPP) and
    /// `detect_head.*`. The class count comes from the class layer.
    private func fastestDet() throws -> (DetectorArchitecture, [String: Tensor]) {
        var (result, stageOutputs) = try megviiBackbone(prefix: "backbone.")
        // The neck reads [pool(stage2), stage3, upsample(stage4)]: reorder each part's columns as its stage's output.
        var columns: [Int] = [], offset = 0
        for order in stageOutputs {
            columns += order.map { $0 + offset }
            offset += order.count
        }
        try unit("neck.reduce", from: "SPP.Conv1x1.conv1x1", at: 0, columns: columns, into: &result)
        for branch in 1...3 {
            for depth in 0..<branch {
                try unit("spp.branch\(branch).dw\(depth)", from: "SPP.S\(branch)", at: 3 * depth, into: &result)
            }
        }
        try unit("spp.project", from: "SPP.output", at: 0, into: &result)
        try unit("head.input", from: "detect_head.conv1x1.conv1x1", at: 0, into: &result)
        for (branch, layers) in [("objectness", "obj_layers"), ("box", "reg_layers"), ("class", "cls_layers")] {
            try unit("head.\(branch).dw", from: "detect_head.\(layers).conv5x5", at: 0, into: &result)
            try unit("head.\(branch).pw", from: "detect_head.\(layers).conv5x5", at: 3, into: &result)
        }
        let classes = try tensor("detect_head.cls_layers.conv5x5.3.weight").shape[0]
        // FastestDet trains and publishes at 352 px.
        let architecture = DetectorArchitecture(inputWidthPixels: 352, classCount: classes)
        let tensors = try checked(result, against: architecture)
        guard tensors.count == (try Detector(architecture)).namedState().count else {
            throw PretrainedWeightsError.unknownLayout(path: path, sampleKeys: ["(converted \(tensors.count) tensors, the detector has more)"])
        }
        return (architecture, tensors)
    }

    /// torchvision's ShuffleNetV2: same layout as EdgeNAS, other names. Its input is RGB
    /// normalised with ImageNet's mean and standard deviation; EdgeNAS feeds [0, 1], so the
    /// stem's weights are divided by the deviation and the mean's contribution moves into the
    /// batch norm's running mean (exact except in the one-pixel zero-padded border).
    private func torchvisionBackbone() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        try unit("stem.conv", from: "conv1", at: 0, into: &result)
        let mean: [Float] = [0.485, 0.456, 0.406], deviation: [Float] = [0.229, 0.224, 0.225]
        let stem = try result["stem.conv.conv.weight"]!.floats()
        let shape = try result["stem.conv.conv.weight"]!.shape  // [out, 3, 3, 3]
        let perChannel = shape[2] * shape[3]
        var scaled = stem, shift = [Float](repeating: 0, count: shape[0])
        for index in stem.indices {
            let channel = index / perChannel % 3
            scaled[index] = stem[index] / deviation[channel]
            shift[index / (3 * perChannel)] += stem[index] * mean[channel] / deviation[channel]
        }
        result["stem.conv.conv.weight"] = try Tensor(scaled, shape: shape)
        let runningMean = try result["stem.conv.bn.running_mean"]!.floats()
        result["stem.conv.bn.running_mean"] = try Tensor(zip(runningMean, shift).map { $0 + $1 }, shape: [shape[0]])
        let base = DetectorArchitecture.baseline
        for (stage, units) in base.stageRepeats.enumerated() {
            for index in 0..<units {
                let source = "stage\(stage + 2).\(index)", target = "stage\(stage + 2).unit\(index)"
                if index == 0 {
                    try unit("\(target).branch1.dw", from: "\(source).branch1", at: 0, into: &result)
                    try unit("\(target).branch1.pw", from: "\(source).branch1", at: 2, into: &result)
                }
                try unit("\(target).branch2.pw1", from: "\(source).branch2", at: 0, into: &result)
                try unit("\(target).branch2.dw", from: "\(source).branch2", at: 3, into: &result)
                try unit("\(target).branch2.pw2", from: "\(source).branch2", at: 5, into: &result)
            }
        }
        return result
    }

    /// The converted tensors, each checked to have the shape `architecture`'s detector gives
    /// the tensor of that name (a checkpoint of another width fails here, naming the key).
    private func checked(_ tensors: [String: Tensor], against architecture: DetectorArchitecture) throws -> [String: Tensor] {
        let expected = Dictionary(try Detector(architecture).namedState().map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
        for (name, tensor) in tensors {
            guard let shape = expected[name] else { throw PretrainedWeightsError.missingTensor(path: path, key: name) }
            guard tensor.shape == shape else {
                throw PretrainedWeightsError.shapeMismatch(path: path, key: name, expected: shape, found: tensor.shape)
            }
        }
        return tensors
    }
}
