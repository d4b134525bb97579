// Generated from wit/projection.wit by scripts/generate-wit-types.mjs: do not edit.
declare module 'projector:projection/log@0.1.0' {
  /**
   * Emit one log record.
   */
  export function log(level: Level, message: string): void;
  /**
   * Report that the guest is panicking, just before it aborts.
   * 
   * SDKs call this from their panic hook. The host then reports the
   * ensuing trap as a guest panic that carries `message`.
   */
  export function reportPanic(message: string): void;
  /**
   * Severity of a log record.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
