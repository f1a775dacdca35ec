/** Small DOM helpers shared by the tabs. */

import { statusClass } from './format';

/** An element with attributes (`class` sets className) and children (null ones skipped). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

/** An error message in the tabs' alert box, or null when there is none. */
export function alertBox(message: string | null | undefined): HTMLElement | null {
  return message ? el('pre', { class: 'jp-cellops-error-box', role: 'alert' }, message) : null;
}

/** A JupyterLab-styled button (jp-Button with the theme's colours). */
export function button(label: string, onClick: (e: MouseEvent) => void, attrs: Record<string, string> = {},
                       kind: 'accept' | 'reject' | 'plain' = 'plain'): HTMLButtonElement {
  const cls = `jp-Button jp-mod-styled ${kind === 'accept' ? 'jp-mod-accept' : kind === 'reject' ? 'jp-mod-reject' : 'jp-mod-minimal'}`;
  const b = el('button', { ...attrs, class: `${cls} ${attrs.class || ''}`.trim(), type: 'button' }, label);
  b.onclick = onClick;
  return b;
}

/** A status badge coloured by the theme (light and dark). */
export function badge(status: string): HTMLElement {
  return el('span', { class: `jp-cellops-badge jp-cellops-badge-${statusClass(status)}`, title: status },
            status.toLowerCase());
}
