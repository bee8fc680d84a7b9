// Zero-cost proxies: scores of an untrained network from one minibatch (formulas in
// docs/estimators.md, reference computation in Tests/ZeroCostProxiesTests/Fixtures).
import Foundation
import Torch
import Vision

/// The proxies, named as NASLib's zero_cost.csv columns. Higher = predicted better, except
/// that `plain` keeps NASLib's sign (it is anti-correlated with accuracy on NAS-Bench-201).
public enum ZeroCostProxy: String, Codable, Sendable, Hashable, CaseIterable {
    case params, flops, synflow, snip, grasp, fisher
    case gradNorm = "grad_norm"
    case jacov, nwot, zen
    case epeNAS = "epe_nas"
    case l2Norm = "l2_norm"
    case plain

    /// Proxies computed from one shared loss gradient (weights and weighted layers' outputs).
    var readsLossGradient: Bool { [.snip, .fisher, .gradNorm, .plain].contains(self) }
    /// Proxies computed from one shared input Jacobian.
    var readsInputJacobian: Bool { [.jacov, .epeNAS].contains(self) }
}

public enum ZeroCostProxyError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyBatch
    case groupCountMismatch(groups: Int, samples: Int)
    case noActivations(proxy: String)

    public var description: String {
        switch self {
        case .emptyBatch: "zero-cost proxies need a minibatch of at least one sample"
        case .groupCountMismatch(let g, let n): "minibatch has \(n) samples but \(g) group labels; expected one per sample"
        case .noActivations(let p): "\(p) needs ReLU activations, but the network's forward pass reported none"
        }
    }
}

/// A proxy's value and how long it took to compute.
public struct ZeroCostProxyScore: Codable, Sendable, Hashable {
    public var proxy: ZeroCostProxy
    public var score: Double
    public var seconds: Double

    public init(proxy: ZeroCostProxy, score: Double, seconds: Double) {
        self.proxy = proxy
        self.score = score
        self.seconds = seconds
    }
}

/// Computes proxies. Every proxy starts from the network as it was given: its parameters and
/// buffers are restored after each (synflow replaces weights by their magnitudes, batch-norm
/// running statistics move in training mode), so the order of evaluation never changes a score.
///
/// Proxies that read the same pass share it: one loss gradient serves grad_norm, snip, plain
/// and fisher, one input Jacobian serves jacov and epe_nas. Each shared pass runs once per
/// `scores` call, and every proxy's `seconds` include the passes it read, so a score's time is
/// what that proxy costs alone (the figure the selection compares with a training run).
public struct ZeroCostProxyEvaluator: Sendable {
    /// Seed of Zen-NAS's Gaussian inputs.
    public var seed: UInt64
    /// Zen-NAS's mixup scale alpha: the input is perturbed by alpha x Gaussian noise.
    public var zenMixupScale: Double

    public init(seed: UInt64 = 0, zenMixupScale: Double = 0.01) {
        self.seed = seed
        self.zenMixupScale = zenMixupScale
    }

    /// All `proxies` with their computing times.
    public func scores<Network: ProxyNetwork>(
        _ proxies: [ZeroCostProxy] = ZeroCostProxy.allCases, network: Network, batch: ProxyBatch<Network.Targets>
    ) throws -> [ZeroCostProxyScore] {
        let samples = batch.inputs.shape.first ?? 0
        guard samples > 0 else { throw ZeroCostProxyError.emptyBatch }
        guard batch.groups.count == samples else {
            throw ZeroCostProxyError.groupCountMismatch(groups: batch.groups.count, samples: samples)
        }
        let lossGradient = try proxies.contains(where: \.readsLossGradient)
            ? timed { try onOriginalNetwork(network, training: true) { try LossGradientPass(network, batch) } } : nil
        let jacobian = try proxies.contains(where: \.readsInputJacobian)
            ? timed { try onOriginalNetwork(network, training: true) { try inputJacobian(network, batch) } } : nil
        return try proxies.map { proxy in
            let (value, seconds) = try timed {
                try onOriginalNetwork(network, training: proxy != .synflow) {
                    try compute(proxy, network, batch, lossGradient: lossGradient?.value, jacobian: jacobian?.value)
                }
            }
            let shared = (proxy.readsLossGradient ? lossGradient?.seconds ?? 0 : 0) + (proxy.readsInputJacobian ? jacobian?.seconds ?? 0 : 0)
            return ZeroCostProxyScore(proxy: proxy, score: value, seconds: seconds + shared)
        }
    }

    public func score<Network: ProxyNetwork>(
        _ proxy: ZeroCostProxy, network: Network, batch: ProxyBatch<Network.Targets>
    ) throws -> Double {
        try scores([proxy], network: network, batch: batch)[0].score
    }

    private func compute<N: ProxyNetwork>(
        _ proxy: ZeroCostProxy, _ network: N, _ batch: ProxyBatch<N.Targets>, lossGradient: LossGradientPass?, jacobian: [[Double]]?
    ) throws -> Double {
        let module = network.module
        // `scores` ran the shared passes for every proxy that reads them.
        switch proxy {
        case .params: return Double(module.parameters().reduce(0) { $0 + $1.elementCount })
        case .flops: return Double(network.multiplyAccumulates)
        case .l2Norm: return try network.weightedLayerWeights.reduce(0) { try $0 + $1.pow(2).sum().sqrt().item() }
        case .gradNorm, .snip, .plain: return try weightGradientScore(proxy, lossGradient!)
        case .fisher: return try fisher(lossGradient!)
        case .grasp: return try grasp(network, batch)
        case .synflow: return try synflow(network, batch)
        case .jacov: return jacov(jacobian!)
        case .epeNAS: return epeNAS(jacobian!, groups: batch.groups)
        case .nwot: return try nwot(network, batch)
        case .zen: return try zen(network, batch)
        }
    }

    /// `body` on `network` in training or evaluation mode; afterwards the network's tensors and
    /// mode are what they were before.
    private func onOriginalNetwork<N: ProxyNetwork, Value>(_ network: N, training: Bool, _ body: () throws -> Value) throws -> Value {
        let module = network.module
        let saved = try module.namedState().map { try $0.tensor.detach().clone() }
        let wasTraining = module.isTraining
        defer {
            // Restoring copies of the network's own tensors cannot fail short of memory exhaustion.
            for ((_, tensor), copy) in zip(module.namedState(), saved) { try? tensor.assign(copy) }
            module.train(wasTraining)
        }
        module.train(training)
        return try body()
    }

    private func timed<Value>(_ body: () throws -> Value) rethrows -> (value: Value, seconds: Double) {
        let start = Date()
        let value = try body()
        return (value, Date().timeIntervalSince(start))
    }

    // MARK: loss gradients

    /// The minibatch loss differentiated once, in training mode, with respect to the weighted
    /// layers' weights and their outputs a. Of the outputs it keeps only what Fisher reads,
    /// sum_spatial a . dL/da per sample and channel, not the activations themselves.
    private struct LossGradientPass {
        var weights: [Tensor], weightGradients: [Tensor]
        /// Per weighted layer, [N, C].
        var activationGradientProducts: [Tensor]

        init<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws {
            weights = network.weightedLayerWeights
            var activations: [Tensor] = []
            let loss = try network.loss(batch.inputs, targets: batch.targets) { _, kind, value in
                if kind == .weightedLayer { activations.append(value) }
            }
            let gradients = try Autograd.gradients(of: [loss], withRespectTo: weights + activations)
            weightGradients = Array(gradients.prefix(weights.count))
            activationGradientProducts = try zip(activations, gradients.dropFirst(weights.count)).map { activation, gradient in
                let product = try activation.detach() * gradient
                return product.rank > 2 ? try product.sum(dims: Array(2..<product.rank)) : product
            }
        }
    }

    /// grad_norm = sum_l ||g_l||_2, snip = sum |g . w|, plain = sum g . w, with g = dL/dw.
    private func weightGradientScore(_ proxy: ZeroCostProxy, _ pass: LossGradientPass) throws -> Double {
        try zip(pass.weights, pass.weightGradients).reduce(0.0) { total, pair in
            let (w, g) = pair
            switch proxy {
            case .gradNorm: return try total + g.pow(2).sum().sqrt().item()
            case .snip: return try total + (g * w).abs().sum().item()
            default: return try total + (g * w).sum().item()
            }
        }
    }

    /// GraSP: -sum w . (H g), g = dL/dw held constant, H g = d(g . dL/dw)/dw.
    private func grasp<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws -> Double {
        let weights = network.weightedLayerWeights
        let loss = try network.loss(batch.inputs, targets: batch.targets, observer: nil)
        let gradients = try Autograd.gradients(of: [loss], withRespectTo: weights, createGraph: true)
        var product: Tensor?
        for g in gradients {
            let term = try (g.detach() * g).sum()
            product = try product.map { try $0 + term } ?? term
        }
        guard let product else { return 0 }
        let hessianGradient = try Autograd.gradients(of: [product], withRespectTo: weights)
        return try zip(weights, hessianGradient).reduce(0.0) { try $0 - ($1.0.detach() * $1.1).sum().item() }
    }

    /// Fisher: for each weighted layer's output a [N, C, ...] with loss gradient da,
    /// sum_c 0.5 mean_n (sum_spatial a . da)^2, summed over layers.
    private func fisher(_ pass: LossGradientPass) throws -> Double {
        guard !pass.activationGradientProducts.isEmpty else { throw ZeroCostProxyError.noActivations(proxy: ZeroCostProxy.fisher.rawValue) }
        return try pass.activationGradientProducts.reduce(0.0) { total, product in
            try total + (product.pow(2).mean(dims: [0]) * 0.5).sum().item()
        }
    }

    // MARK: data-independent or label-free

    /// SynFlow: every parameter replaced by its magnitude, batch norm in evaluation mode (at
    /// initialisation its running statistics make it the identity up to 1/sqrt(1 + eps)), an
    /// all-ones input of one sample, R = sum of the output; score = sum |w . dR/dw| over the
    /// weighted layers' weights.
    /// Runs in float64 (the product of many layers' magnitudes overflows float32) and converts back.
    private func synflow<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws -> Double {
        let module = network.module
        let originalType = batch.inputs.dtype
        try module.convertFloatingPoint(to: .float64)
        defer { try? module.convertFloatingPoint(to: originalType) }
        for p in module.parameters() { try p.assign(p.detach().abs()) }
        let weights = network.weightedLayerWeights
        var shape = batch.inputs.shape
        shape[0] = 1
        let output = try network.output(Tensor.ones(shape, dtype: .float64), observer: nil)
        let gradients = try Autograd.gradients(of: [output.sum()], withRespectTo: weights)
        return try zip(weights, gradients).reduce(0.0) { try $0 + ($1.0.detach() * $1.1).abs().sum().item() }
    }

    /// Per-sample input gradients of the output's sum, as rows [N, D] of doubles.
    private func inputJacobian<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws -> [[Double]] {
        let input = try batch.inputs.detach().clone().requiresGrad(true)
        let output = try network.output(input, observer: nil)
        let gradient = try Autograd.gradients(of: [output.sum()], withRespectTo: [input])[0]
        let samples = input.shape[0]
        let values = try gradient.to(.float64).toArray(of: Double.self)
        let width = values.count / samples
        return (0..<samples).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// jacov (Mellor et al. 2020): C = correlation matrix of the per-sample input gradients,
    /// eigenvalues v; score = -sum (log(v + k) + 1 / (v + k)), k = 1e-5.
    private func jacov(_ rows: [[Double]]) -> Double {
        let k = 1e-5
        let eigenvalues = SmallMatrix.symmetricEigenvalues(SmallMatrix.correlation(rows))
        return -eigenvalues.reduce(0) { $0 + Foundation.log($1 + k) + 1 / ($1 + k) }
    }

    /// EPE-NAS (Lopes et al. 2021): per group g, C_g = correlation matrix of its samples' input
    /// gradients, s_g = sum_ij log(|C_g,ij| + k) (a group of one sample: log(1 + k)); score = sum_g |s_g|.
    private func epeNAS(_ rows: [[Double]], groups: [Int]) -> Double {
        let k = 1e-5
        var total = 0.0
        for group in Set(groups).sorted() {
            let members = groups.indices.filter { groups[$0] == group }.map { rows[$0] }
            let s = members.count == 1 ? Foundation.log(1 + k)
                : SmallMatrix.correlation(members).joined().reduce(0) { $0 + Foundation.log(Swift.abs($1) + k) }
            total += Swift.abs(s)
        }
        return total
    }

    /// NASWOT (Mellor et al. 2021): binary codes c (activation > 0) of every ReLU, per sample;
    /// K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T; score = log |det K|.
    private func nwot<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws -> Double {
        let samples = batch.inputs.shape[0]
        var kernel: Tensor?
        try Torch.withNoGrad {
            _ = try network.output(batch.inputs, observer: { _, kind, value in
                guard kind == .relu else { return }
                let codes = try value.gt(0).to(.float64).reshape([samples, -1])
                let complement = try 1.0 - codes
                let term = try codes.matmul(codes.transpose(0, 1)) + complement.matmul(complement.transpose(0, 1))
                kernel = try kernel.map { try $0 + term } ?? term
            })
        }
        guard let kernel else { throw ZeroCostProxyError.noActivations(proxy: ZeroCostProxy.nwot.rawValue) }
        let values = try kernel.toArray(of: Double.self)
        return SmallMatrix.logAbsDeterminant((0..<samples).map { Array(values[($0 * samples)..<(($0 + 1) * samples)]) })
    }

    /// Zen-NAS (Lin et al. 2021), training mode, no gradients: x, e ~ N(0, 1) of the minibatch's
    /// shape; score = log(mean_n sum |f(x) - f(x + alpha e)|) + sum over batch norms of
    /// log sqrt(mean(running_var)), read after the two forward passes. Unlike the paper the
    /// weights keep their initialisation (it re-draws them from N(0, 1)), like every other proxy.
    private func zen<N: ProxyNetwork>(_ network: N, _ batch: ProxyBatch<N.Targets>) throws -> Double {
        let generator = try Generator(seed: seed)
        let shape = batch.inputs.shape, dtype = batch.inputs.dtype
        let input = try Tensor.normal(shape, dtype: dtype, generator: generator)
        let noise = try Tensor.normal(shape, dtype: dtype, generator: generator)
        return try Torch.withNoGrad {
            let clean = try network.features(input)
            let mixed = try network.features(input + noise * zenMixupScale)
            var difference = try (clean - mixed).abs()
            if difference.rank > 1 { difference = try difference.sum(dims: Array(1..<difference.rank)) }
            var score = Foundation.log(try difference.mean().item())
            for norm in batchNorms(in: network.module) {
                score += Foundation.log(try norm.runningVar.tensor.mean().sqrt().item())
            }
            return score
        }
    }

    private func batchNorms(in module: any Module) -> [BatchNorm2d] {
        ((module as? BatchNorm2d).map { [$0] } ?? []) + module.children.flatMap { batchNorms(in: $0.module) }
    }
}
