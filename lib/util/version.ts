/** The software version, reported by `remise --version` and in node status. */
export const VERSION = "0.1.0";
