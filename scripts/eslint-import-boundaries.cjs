'use strict';
// ESLint rule `coordbus/import-boundaries`: apps never import another app, libs never import an
// app, and code outside a lib reaches it through its barrel (`@coordbus/<lib>`), never a relative
// path into its files. Paths are resolved, not pattern-matched, so `../../../other-app/src/x`
// is caught however deep the importing file sits.
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** `{ kind: 'apps' | 'libs', name }` of the project a path belongs to, or undefined (test/, bench/, scripts/). */
function projectOf(file) {
  const rel = path.relative(root, file).split(path.sep).join('/');
  const m = /^(apps|libs)\/([^/]+)\//.exec(rel);
  return m ? { kind: m[1], name: m[2] } : undefined;
}

/** The project a module specifier points at, seen from `file`. */
function targetOf(file, spec) {
  const barrel = /^@coordbus\/([^/]+)(\/.*)?$/.exec(spec);
  if (barrel) return { kind: 'libs', name: barrel[1], viaBarrel: !barrel[2] };
  if (!spec.startsWith('.')) return undefined;
  const target = projectOf(path.resolve(path.dirname(file), spec));
  return target && { ...target, viaBarrel: false };
}

const rule = {
  meta: {
    type: 'problem',
    docs: {
      description: 'apps never import apps, libs never import apps, libs are imported through their barrel',
    },
    schema: [],
    messages: {
      appToApp:
        'apps/{{from}} imports apps/{{to}} ("{{spec}}"): apps never import another app; move the shared code into a lib under libs/ and import it as @coordbus/<lib>.',
      libToApp:
        'libs/{{from}} imports apps/{{to}} ("{{spec}}"): a lib never imports an app; move what it needs into a lib.',
      deepLib:
        '{{fromKind}}/{{from}} reaches into libs/{{to}} ("{{spec}}"): import it through its barrel, @coordbus/{{to}}.',
    },
  },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const from = projectOf(file);
    if (!from) return {};
    const check = (node, spec) => {
      if (typeof spec !== 'string') return;
      const to = targetOf(file, spec);
      if (!to || (to.kind === from.kind && to.name === from.name)) return;
      const data = { from: from.name, fromKind: from.kind, to: to.name, spec };
      if (to.kind === 'apps')
        context.report({ node, messageId: from.kind === 'apps' ? 'appToApp' : 'libToApp', data });
      else if (!to.viaBarrel) context.report({ node, messageId: 'deepLib', data });
    };
    const literal = (n) => (n && n.type === 'Literal' ? n.value : undefined);
    return {
      ImportDeclaration: (n) => check(n, n.source.value),
      ExportAllDeclaration: (n) => check(n, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n, n.source.value),
      ImportExpression: (n) => check(n, literal(n.source)),
      // typescript-eslint 8.x names the specifier `source`; older versions `argument` (a TSLiteralType).
      TSImportType: (n) => {
        const arg = n.source ?? n.argument;
        check(n, literal(arg && arg.type === 'TSLiteralType' ? arg.literal : arg));
      },
      TSExternalModuleReference: (n) => check(n, literal(n.expression)),
      CallExpression: (n) => {
        if (n.callee.type === 'Identifier' && n.callee.name === 'require' && n.arguments.length === 1)
          check(n, literal(n.arguments[0]));
      },
    };
  },
};

module.exports = { rules: { 'import-boundaries': rule } };
