/** Small DOM helpers shared by the tabs. */

import { splitCaret, statusClass } from './format';

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

/**
 * An error message in the tabs' alert box, or null when there is none. The text wraps to
 * the box's width; a filter error's excerpt marks the offending character (a caret line
 * under a wrapped excerpt would point at the wrong one).
 */
export function alertBox(message: string | null | undefined): HTMLElement | null {
  if (!message) {
    return null;
  }
  const parts = splitCaret(message);
  if (!parts) {
    return el('div', { class: 'jp-cellops-error-box', role: 'alert' }, el('p', {}, message));
  }
  const { excerpt, at } = parts;
  const mark = el('mark', { class: 'jp-cellops-error-at', title: 'here' }, excerpt.slice(at, at + 1) || '\u2002');
  return el('div', { class: 'jp-cellops-error-box', role: 'alert' },
    el('p', {}, parts.message),
    el('code', { class: 'jp-cellops-error-where' }, excerpt.slice(0, at), mark, excerpt.slice(at + 1)));
}

/** A run's status as a coloured dot (its name on hover and for screen readers). */
export function statusDot(status: string, label = status.toLowerCase()): HTMLElement {
  return el('span', { class: `jp-cellops-dot jp-cellops-dot-${statusClass(status)}`, title: label,
                      role: 'img', 'aria-label': label });
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
