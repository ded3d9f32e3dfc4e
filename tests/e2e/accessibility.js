// What a page of the console must do for people using a screen reader, a keyboard, weak eyes
// or a phone (tests/e2e/browser.py runs it on every page it photographs); one line per problem.
// Contrast is WCAG 2's ratio of relative luminances, text against the first opaque background
// behind it (AA: 4.5, 3 for large text; disabled controls are exempt, as WCAG says), and the
// focus ring against white (3).
() => {
  const problems = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${(el.textContent || "").trim().slice(0, 30)}"`;
  if (!document.documentElement.lang) problems.push("html has no lang");
  // every control has a name a screen reader can say
  for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (!shown(el) || el.type === "hidden") continue;
    const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
      || (el.labels && el.labels.length) || (["BUTTON", "A"].includes(el.tagName) && el.textContent.trim());
    if (!named) problems.push(`no accessible name: ${describe(el)}`);
  }
  // text contrast
  const rgba = (text) => (text.match(/[\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const background = (el) => {
    for (let node = el; node instanceof Element; node = node.parentElement) {
      const [r, g, b, a = 1] = rgba(getComputedStyle(node).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own || !shown(el) || el.closest("[disabled], .visually-hidden")) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const found = ratio(rgba(style.color), background(el));
    if (found < (large ? 3 : 4.5)) problems.push(`contrast ${found.toFixed(2)}: ${describe(el)}`);
  }
  // the focus ring shows against the page
  const hex = getComputedStyle(document.documentElement).getPropertyValue("--focus").trim();
  const ring = hex.slice(1).match(/../g).map((pair) => parseInt(pair, 16));
  if (ratio(ring, [255, 255, 255]) < 3) problems.push(`focus ring contrast ${ratio(ring, [255, 255, 255]).toFixed(2)}`);
  // nothing wider than the screen (a phone)
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`page ${document.documentElement.scrollWidth}px wide on a ${window.innerWidth}px screen`);
  }
  return problems;
}
