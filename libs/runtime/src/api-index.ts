import { RequestMethod, SetMetadata, Type } from '@nestjs/common';
import {
  METHOD_METADATA,
  PARAMTYPES_METADATA,
  PATH_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { MetadataScanner } from '@nestjs/core';
import { getMetadataStorage } from 'class-validator';

const API_DOC = 'coordbus:api-doc';

export interface ApiDocMetadata {
  /** One line: what the route answers. */
  summary: string;
  /** Query parameters the handler reads itself (not through `@Query`); rare, listed beside it. */
  query?: string[];
}

/**
 * The one-line description of an HTTP route, kept on the route itself: API indexes
 * ({@link describeRoutes}) read it together with the route's real path, method and parameters.
 */
export const ApiDoc = (summary: string, extra: Omit<ApiDocMetadata, 'summary'> = {}) =>
  SetMetadata(API_DOC, { summary, ...extra } satisfies ApiDocMetadata);

/** One HTTP route as Nest registered it. */
export interface RouteDescription {
  method: string;
  path: string;
  /** Query parameter names: a `@Query()` DTO's validated properties, `@Query('name')`, `ApiDoc` extras. */
  query: string[];
  /** The route's `@ApiDoc` summary; null when it has none. */
  description: string | null;
  controller: Type;
  handler: (...args: unknown[]) => unknown;
}

const scanner = new MetadataScanner();

function joinPath(...parts: string[]): string {
  const path = parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
  return `/${path}`;
}

const paths = (raw: unknown): string[] =>
  raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : [String(raw)];

/** The query parameters a handler takes, from its `@Query` arguments. */
function queryParams(controller: Type, name: string, extra: string[] = []): string[] {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, name) ?? {}) as Record<
    string,
    { index: number; data?: unknown }
  >;
  const types = (Reflect.getMetadata(PARAMTYPES_METADATA, controller.prototype, name) ?? []) as unknown[];
  const out = new Set<string>();
  for (const [key, arg] of Object.entries(args)) {
    if (Number(key.split(':')[0]) !== Number(RouteParamtypes.QUERY)) continue;
    if (typeof arg.data === 'string') {
      out.add(arg.data);
      continue;
    }
    const dto = types[arg.index];
    if (typeof dto !== 'function') continue;
    for (const m of getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false)) {
      out.add(m.propertyName);
    }
  }
  for (const q of extra) out.add(q);
  return [...out];
}

/**
 * Every HTTP route of `controllers`, read from Nest's own route metadata (the table the router is
 * built from), sorted by path then method. Handlers that are not HTTP routes (stream handlers) are
 * skipped.
 */
export function describeRoutes(controllers: readonly Type[]): RouteDescription[] {
  const out: RouteDescription[] = [];
  for (const controller of controllers) {
    const bases = paths(Reflect.getMetadata(PATH_METADATA, controller));
    for (const name of scanner.getAllMethodNames(controller.prototype)) {
      const handler = (controller.prototype as Record<string, unknown>)[name] as RouteDescription['handler'];
      const routePaths = paths(Reflect.getMetadata(PATH_METADATA, handler));
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (!routePaths.length || method === undefined) continue;
      const doc = Reflect.getMetadata(API_DOC, handler) as ApiDocMetadata | undefined;
      const query = queryParams(controller, name, doc?.query);
      for (const base of bases.length ? bases : ['']) {
        for (const p of routePaths) {
          out.push({
            method: RequestMethod[method],
            path: joinPath(base, p),
            query,
            description: doc?.summary ?? null,
            controller,
            handler,
          });
        }
      }
    }
  }
  return out.sort((a, b) =>
    a.path === b.path ? a.method.localeCompare(b.method) : a.path < b.path ? -1 : 1,
  );
}
