// swift-tools-version: 6.0
import PackageDescription

// AVX2 + FMA code generation for the SIMD kernels. Guarded so the manifest still
// resolves on other architectures (the kernels then fall back to portable SIMD).
#if arch(x86_64)
let simdSwiftFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
let simdCFlags: [CSetting] = [.unsafeFlags(["-mavx2", "-mfma"])]
#else
let simdSwiftFlags: [SwiftSetting] = []
let simdCFlags: [CSetting] = []
#endif

let package = Package(
    name: "TinySeek",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TinySeek", targets: ["TinySeek"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .executable(name: "tinyseek", targets: ["tinyseek"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // OpenBLAS through pkg-config (Debian: libopenblas-dev).
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Tensor math: Tensor type, SIMD kernels, BLAS matmul, safetensors reader.
        .target(
            name: "Tensor",
            dependencies: ["COpenBLAS"],
            cSettings: simdCFlags,
            swiftSettings: simdSwiftFlags
        ),
        // The model (config, weights, MLA, MoE, decoder, sampler) and its runtime
        // (instrumented executor, cost model, scheduler, machine profile).
        .target(
            name: "TinySeek",
            dependencies: ["Tensor"],
            swiftSettings: simdSwiftFlags
        ),
        .executableTarget(
            name: "tinyseek",
            dependencies: [
                "TinySeek", "Tensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: simdSwiftFlags
        ),
        .testTarget(
            name: "TensorTests",
            dependencies: ["Tensor"],
            exclude: ["Fixtures"],
            swiftSettings: simdSwiftFlags
        ),
        .testTarget(
            name: "TinySeekTests",
            dependencies: ["TinySeek", "Tensor"],
            exclude: ["Fixtures"],
            swiftSettings: simdSwiftFlags
        ),
    ]
)
