/// Samplers by the names studies store (`Sampler.name`), so that a worker on another machine
/// rebuilds the sampler a study was created with.
public enum SamplerCatalog {
    public static let names = ["auto", "random", "grid", "sobol", "sobol-scrambled", "tpe", "tpe-multivariate", "gp", "nsga2"]

    /// - Parameter budget: the study's trial budget, which `auto` uses to choose its strategy.
    public static func sampler(named name: String, budget: Int?) throws(SamplerCatalogError) -> any Sampler {
        switch name {
        case "auto": AutoSampler(budget: budget)
        case "random": RandomSampler()
        case "grid": GridSampler()
        case "sobol": SobolSampler(scrambled: false)
        case "sobol-scrambled": SobolSampler(scrambled: true)
        // Constant liar: parallel workers see each other's running trials as bad guesses,
        // so they do not all propose the same point.
        case "tpe": TPESampler(constantLiar: true)
        case "tpe-multivariate": TPESampler(multivariate: true, constantLiar: true)
        case "gp": GPSampler()
        case "nsga2": NSGAIISampler()
        default: throw SamplerCatalogError.unknownSampler(name)
        }
    }
}

public enum SamplerCatalogError: Error, Equatable, CustomStringConvertible {
    case unknownSampler(String)

    public var description: String {
        switch self {
        case .unknownSampler(let name):
            "unknown sampler '\(name)'; expected one of \(SamplerCatalog.names.joined(separator: ", "))"
        }
    }
}
