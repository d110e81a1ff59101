// A small schema builder: ONE description of each resource from which come (a) the OpenAPI v3
// structural schema with CEL rules written into crds/*.yaml, (b) the TypeScript type of the spec
// (Infer<>), and (c) the in-process validator the standalone agent runs on its config file.
// Each CEL rule carries a TypeScript twin (`check`); e2e/apiserver/crd-validation.test.ts sends the
// same bad objects to the real apiserver and to validate() so the two cannot drift apart silently.

/** OpenAPI v3 (Kubernetes structural subset) as written into the CRD. */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean';
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  items?: OpenApiSchema;
  additionalProperties?: OpenApiSchema;
  enum?: string[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  default?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: CelValidation[];
}

export interface CelValidation {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Where a config is used: cluster objects may reference Secrets; standalone ones name files. */
export type Mode = 'cluster' | 'standalone';

/** A CEL rule and its TypeScript twin. check returns an error message or undefined. */
export interface Rule<T> {
  readonly cel: CelValidation;
  // Method syntax on purpose: parameters of methods are bivariant, so Node<string> is a Node<unknown>.
  check(self: T, mode: Mode): string | undefined;
}

export interface Problem { readonly path: string; readonly message: string }

/** A schema node; T is the TypeScript type of values it accepts (phantom). */
export class Node<T> {
  readonly openapi: OpenApiSchema;
  readonly rules: Rule<T>[] = [];
  readonly props: Record<string, Prop> | undefined;
  readonly item: Node<unknown> | undefined;
  readonly value: Node<unknown> | undefined;
  /** Fields only a standalone config may (must) use, checked by validate() in that mode. */
  standaloneRequired: readonly string[] = [];
  clusterOnly: readonly string[] = [];
  declare readonly __t?: T;

  constructor(openapi: OpenApiSchema, props?: Record<string, Prop>, item?: Node<unknown>, value?: Node<unknown>) {
    this.openapi = openapi;
    this.props = props;
    this.item = item;
    this.value = value;
  }

  /** Attach a CEL rule with its TypeScript twin; `fieldPath` (".x") narrows the reported path. */
  rule(rule: string, message: string, check: (self: T, mode: Mode) => boolean, opts: { fieldPath?: string; messageExpression?: string; tsMessage?: (self: T) => string } = {}): this {
    const cel: CelValidation = { rule, message };
    if (opts.messageExpression !== undefined) cel.messageExpression = opts.messageExpression;
    if (opts.fieldPath !== undefined) cel.fieldPath = opts.fieldPath;
    const tsMessage = opts.tsMessage;
    this.rules.push({ cel, check: (self, mode) => (check(self, mode) ? undefined : tsMessage ? tsMessage(self) : message) });
    return this;
  }

  describe(text: string): this { this.openapi.description = text; return this; }
  default(v: T): this { this.openapi.default = v; return this; }
}

/** A property: a node plus whether the object requires it. */
export interface Prop { readonly node: Node<unknown>; readonly required: boolean }
type AnyProp = { readonly node: Node<unknown>; readonly required: boolean };

export function req<T>(node: Node<T>): { readonly node: Node<T>; readonly required: true } { return { node, required: true }; }
export function opt<T>(node: Node<T>): { readonly node: Node<T>; readonly required: false } { return { node, required: false }; }

type Shape = Record<string, AnyProp>;
type InferProp<P> = P extends { node: Node<infer T> } ? T : never;
type ReqKeys<S extends Shape> = { [K in keyof S]: S[K]['required'] extends true ? K : never }[keyof S];
type OptKeys<S extends Shape> = Exclude<keyof S, ReqKeys<S>>;
type Flat<T> = { [K in keyof T]: T[K] };
export type ObjOf<S extends Shape> = Flat<{ -readonly [K in ReqKeys<S>]: InferProp<S[K]> } & { -readonly [K in OptKeys<S>]?: InferProp<S[K]> }>;
export type Infer<N> = N extends Node<infer T> ? T : never;

interface StrOpts { pattern?: string; enum?: readonly string[]; minLength?: number; maxLength?: number; format?: string }

export function str(o: StrOpts = {}): Node<string> {
  const s: OpenApiSchema = { type: 'string' };
  if (o.enum) s.enum = [...o.enum];
  if (o.pattern !== undefined) s.pattern = o.pattern;
  if (o.format !== undefined) s.format = o.format;
  if (o.minLength !== undefined) s.minLength = o.minLength;
  s.maxLength = o.maxLength ?? (o.enum ? Math.max(...o.enum.map((e) => e.length)) : 253);
  return new Node<string>(s);
}

export function oneOf<const E extends readonly string[]>(values: E): Node<E[number]> {
  return str({ enum: values }) as Node<string> as Node<E[number]>;
}

export function int(o: { minimum?: number; maximum?: number } = {}): Node<number> {
  const s: OpenApiSchema = { type: 'integer' };
  if (o.minimum !== undefined) s.minimum = o.minimum;
  if (o.maximum !== undefined) s.maximum = o.maximum;
  return new Node<number>(s);
}

export function bool(): Node<boolean> { return new Node<boolean>({ type: 'boolean' }); }

export function list<T>(item: Node<T>, o: { maxItems: number; minItems?: number; set?: boolean }): Node<T[]> {
  const s: OpenApiSchema = { type: 'array', items: item.openapi, maxItems: o.maxItems };
  if (o.minItems !== undefined) s.minItems = o.minItems;
  if (o.set) s['x-kubernetes-list-type'] = 'set';
  return new Node<T[]>(s, undefined, item as Node<unknown>);
}

export function map<T>(value: Node<T>, o: { maxProperties: number }): Node<Record<string, T>> {
  return new Node<Record<string, T>>({ type: 'object', additionalProperties: value.openapi, maxProperties: o.maxProperties }, undefined, undefined, value as Node<unknown>);
}

export function obj<S extends Shape>(shape: S): Node<ObjOf<S>> {
  const properties: Record<string, OpenApiSchema> = {};
  const required: string[] = [];
  for (const [k, p] of Object.entries(shape)) {
    properties[k] = p.node.openapi;
    if (p.required) required.push(k);
  }
  const s: OpenApiSchema = { type: 'object', properties };
  if (required.length > 0) s.required = required;
  return new Node<ObjOf<S>>(s, shape);
}

/** Free-form object (kept as-is by the apiserver): status fields we do not model field by field. */
export function freeform(): Node<Record<string, unknown>> {
  return new Node<Record<string, unknown>>({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
}

/** Deep copy of the OpenAPI tree with CEL rules attached, as written into the CRD. */
export function toOpenApi(n: Node<unknown>): OpenApiSchema {
  const out: OpenApiSchema = { ...n.openapi };
  if (n.props) {
    out.properties = {};
    for (const [k, p] of Object.entries(n.props)) out.properties[k] = toOpenApi(p.node);
  }
  if (n.item) out.items = toOpenApi(n.item);
  if (n.value) out.additionalProperties = toOpenApi(n.value);
  if (n.rules.length > 0) out['x-kubernetes-validations'] = n.rules.map((r) => r.cel);
  return out;
}
