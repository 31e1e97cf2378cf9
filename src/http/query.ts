import type { z } from 'zod';

interface Kinds {
  number: boolean;
  boolean: boolean;
  array: boolean;
  scalar: boolean;
}

type Def = { type: string; innerType?: unknown; options?: unknown[]; in?: unknown; element?: unknown };
const defOf = (schema: unknown): Def | undefined => (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** What JSON kinds a zod field accepts, read from its definition (optional, union, array, ...). */
function kindsOf(schema: unknown, out: Kinds = { number: false, boolean: false, array: false, scalar: false }, depth = 0): Kinds {
  const def = defOf(schema);
  if (!def || depth > 8) return out;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return kindsOf(def.innerType, out, depth + 1);
    case 'pipe':
      return kindsOf(def.in, out, depth + 1);
    case 'union':
      for (const option of def.options ?? []) kindsOf(option, out, depth + 1);
      return out;
    case 'array':
      out.array = true;
      return out;
    case 'number':
    case 'int':
    case 'bigint':
      out.number = true;
      out.scalar = true;
      return out;
    case 'boolean':
      out.boolean = true;
      out.scalar = true;
      return out;
    default:
      out.scalar = true;
      return out;
  }
}

/**
 * Turn query parameters into the input object of a method, guided by the method's own zod
 * object schema (no second schema): numbers and booleans are converted where the field takes
 * them, and a field that takes an array may be repeated (`?state=a&state=b`) or comma-separated
 * (`?state=a,b`). Unknown parameters are kept, so the method's strict schema reports them.
 */
export function queryToInput(schema: z.ZodType, params: URLSearchParams, skip: string[] = []): Record<string, unknown> {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  const out: Record<string, unknown> = {};
  for (const key of new Set(params.keys())) {
    if (skip.includes(key)) continue;
    const values = params.getAll(key);
    const field = shape[key];
    if (field === undefined) {
      out[key] = values.length > 1 ? values : values[0];
      continue;
    }
    const kinds = kindsOf(field);
    if (kinds.array) {
      const parts = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
      if (parts.length === 0) continue; // `?state=`: no filter
      out[key] = parts.length === 1 && kinds.scalar ? convert(parts[0], kinds) : parts.map((p) => convert(p, kinds));
    } else {
      out[key] = values.length > 1 ? values.map((v) => convert(v, kinds)) : convert(values[0], kinds);
    }
  }
  return out;
}

function convert(value: string, kinds: Kinds): unknown {
  if (kinds.number && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (kinds.boolean && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}
