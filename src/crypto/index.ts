export * from "./binding.js";
export * from "./dek.js";
export * from "./envelope.js";
export * from "./kcv.js";
export * from "./thumbprint.js";
