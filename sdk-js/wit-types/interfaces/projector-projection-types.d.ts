// Generated from wit/projection.wit by scripts/generate-wit-types.mjs: do not edit.
declare module 'projector:projection/types@0.1.0' {
  /**
   * A view row: a UTF-8 JSON document.
   * 
   * The runtime rejects a `set` whose row is not valid JSON.
   */
  export type Row = string;
  /**
   * Where in Kafka the event was read from.
   */
  export interface KafkaOrigin {
    /**
     * The topic the record was consumed from.
     */
    topic: string,
    /**
     * The partition within `topic`.
     */
    partition: number,
    /**
     * The record's offset within the partition.
     */
    offset: bigint,
    /**
     * The record's key, if it had one.
     */
    key?: Uint8Array,
    /**
     * The record's timestamp in milliseconds since the Unix epoch, if
     * the broker supplied one.
     */
    timestampMs?: bigint,
  }
  /**
   * A CloudEvents 1.0 event, with every context attribute.
   * 
   * See <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md>.
   */
  export interface Event {
    /**
     * `id`: unique within the scope of `source`.
     */
    id: string,
    /**
     * `source`: a URI-reference naming the context the event came from.
     */
    source: string,
    /**
     * `specversion`: always `1.0`.
     */
    specversion: string,
    /**
     * `type`: the kind of event, such as `com.example.customer.created`.
     */
    type: string,
    /**
     * `subject`: names the view row this event updates.
     */
    subject?: string,
    /**
     * `time`: when the occurrence happened, RFC 3339 text as received.
     */
    time?: string,
    /**
     * `datacontenttype`: the media type of `data`, such as
     * `application/json`.
     */
    datacontenttype?: string,
    /**
     * `dataschema`: a URI naming the schema `data` adheres to.
     */
    dataschema?: string,
    /**
     * Extension attributes as name/value pairs, in the order received.
     * Names are lower-case CloudEvents attribute names without a prefix.
     */
    extensions: Array<[string, string]>,
    /**
     * The event payload, as bytes.
     */
    data?: Uint8Array,
    /**
     * The Kafka record the event was decoded from.
     */
    origin: KafkaOrigin,
  }
  /**
   * What to do with the subject's row.
   */
  export type Update = UpdateSet | UpdateDelete | UpdateIgnore;
  /**
   * Store this row, replacing any previous one.
   */
  export interface UpdateSet {
    tag: 'set',
    val: Row,
  }
  /**
   * Remove the row.
   */
  export interface UpdateDelete {
    tag: 'delete',
  }
  /**
   * Leave the row as it is.
   */
  export interface UpdateIgnore {
    tag: 'ignore',
  }
  /**
   * An error a projection returns for an event it cannot apply.
   * 
   * The runtime hands the event to the view's error policy (stop, skip or
   * dead-letter). Retrying cannot help: a projection is deterministic.
   */
  export interface Error {
    /**
     * A short, stable, machine-readable class, such as `invalid-data`.
     */
    code: string,
    /**
     * A message for people.
     */
    message: string,
  }
}
