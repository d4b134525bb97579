// Generated from wit/projection.wit by scripts/generate-wit-types.mjs: do not edit.
/// <reference path="./interfaces/projector-projection-log.d.ts" />
/// <reference path="./interfaces/projector-projection-types.d.ts" />
declare module 'projector:projection/projection@0.1.0' {
  export type Row = import('projector:projection/types@0.1.0').Row;
  export type Event = import('projector:projection/types@0.1.0').Event;
  export type Update = import('projector:projection/types@0.1.0').Update;
  export type Error = import('projector:projection/types@0.1.0').Error;
  export type * as ProjectorProjectionLog010 from 'projector:projection/log@0.1.0'; // import projector:projection/log@0.1.0
  export type * as ProjectorProjectionTypes010 from 'projector:projection/types@0.1.0'; // import projector:projection/types@0.1.0
  /**
  * Apply one event to the current row of its subject.
  * 
  * `state` is the subject's row, or `none` if it has none.
  */
  export function apply(state: Row | undefined, event: Event): Update;
  export type Option<T> = { tag: 'none' } | { tag: 'some', val: T };
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
