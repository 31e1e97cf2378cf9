/** The console's stylesheet (one <style> block, allowed by hash in the CSP). */
export const STYLE = String.raw`
:root {
  --bg: #f5f6f8; --panel: #fff; --ink: #1c2430; --muted: #667085; --line: #e3e6eb; --accent: #2563eb;
  --accent-ink: #fff; --danger: #c62828; --head: #111827; --head-ink: #e5e7eb; --focus: #93c5fd;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 0 0 12px; }
.panel > h3:first-child { margin-top: 0; }
h3 { font-size: 14px; margin: 18px 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
button, input, select, textarea { font: inherit; color: inherit; }
button { border: 1px solid #cfd4dc; background: #fff; border-radius: 6px; padding: 6px 12px; cursor: pointer; }
button:hover:not(:disabled) { background: #f0f2f5; }
button:disabled { opacity: .45; cursor: not-allowed; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-ink); }
button.primary:hover:not(:disabled) { background: #1d4ed8; }
button.danger { background: var(--danger); border-color: var(--danger); color: #fff; }
button.danger:hover:not(:disabled) { background: #a31f1f; }
button.ghost { background: transparent; color: var(--head-ink); border-color: #374151; }
button.ghost:hover:not(:disabled) { background: #1f2937; }
button.small { padding: 3px 8px; font-size: 12.5px; }
input[type=text], input[type=password], input[type=number], input:not([type]), select, textarea {
  border: 1px solid #cfd4dc; border-radius: 6px; padding: 6px 8px; background: #fff; min-width: 0;
}
input[type=text], input[type=password], input[type=number], input:not([type]), select { height: 34px; }
dialog .field { margin-top: 14px; }
textarea { width: 100%; min-height: 56px; resize: vertical; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 1px; }

header.top { position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 18px; padding: 0 20px; height: 52px; background: var(--head); color: var(--head-ink); }
.brand { color: #fff; font-weight: 700; font-size: 17px; letter-spacing: .02em; }
.brand:hover { text-decoration: none; }
nav { display: flex; gap: 4px; height: 100%; }
nav a { color: #cbd5e1; padding: 0 12px; display: flex; align-items: center; border-bottom: 3px solid transparent; }
nav a:hover { color: #fff; text-decoration: none; }
nav a.active { color: #fff; border-bottom-color: #60a5fa; }
nav a.unavailable { opacity: .5; }
.spacer { flex: 1; }
.live { font-size: 12px; padding: 3px 9px; border-radius: 999px; background: #374151; color: #d1d5db; }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; margin-right: 6px; vertical-align: 0; }
.live.on { background: #064e3b; color: #d1fae5; }
.live.on::before { background: #34d399; }
.who { font-size: 13px; color: #cbd5e1; }
.banner { background: #fef3c7; color: #78350f; padding: 10px 20px; border-bottom: 1px solid #fcd34d; }
.main { padding: 20px; max-width: 1400px; margin: 0 auto; outline: none; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px; margin-bottom: 16px; }
.row { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.between { justify-content: space-between; }

form.filters { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-end; }
.field { display: flex; flex-direction: column; gap: 4px; font-size: 12px; color: var(--muted); font-weight: 600; }
.field > input, .field > select, .field > textarea { font-weight: 400; color: var(--ink); font-size: 14px; }
.field.wide { flex: 1 1 260px; }
fieldset.states { border: 0; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
fieldset.states legend { font-size: 12px; color: var(--muted); font-weight: 600; padding: 0; margin-bottom: 4px; }
.chip { display: inline-flex; align-items: center; gap: 4px; padding: 2px 8px 2px 4px; border: 1px solid var(--line); border-radius: 999px; font-size: 12px; background: #fff; cursor: pointer; user-select: none; }
.chip input { margin: 0; }

.batch { position: sticky; top: 52px; z-index: 4; display: flex; align-items: center; gap: 8px; padding: 10px 16px; background: #eef2ff; border: 1px solid #c7d2fe; border-radius: 10px; margin-bottom: 12px; }
.batch .sel-count { font-weight: 600; min-width: 90px; }
.notice { background: #ecfeff; border: 1px solid #a5f3fc; color: #155e75; padding: 6px 12px; border-radius: 8px; }

table.grid { width: 100%; border-collapse: separate; border-spacing: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
table.grid th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: #fafbfc; padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.grid td { padding: 7px 10px; border-bottom: 1px solid #f0f1f4; vertical-align: middle; }
table.grid tr:last-child td { border-bottom: 0; }
table.grid tbody tr:hover td { background: #f8fafc; }
table.grid tr.selected td { background: #eef2ff; }
table.grid tr.stale td { opacity: .55; }
table.grid tr.flash td { animation: flash 1.2s ease-out; }
@keyframes flash { from { background: #fff7cc; } to { background: transparent; } }
table.grid td.sel, table.grid th.sel { width: 34px; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.grid .empty { text-align: center; color: var(--muted); padding: 28px; }
.pager { display: flex; gap: 8px; align-items: center; justify-content: flex-end; margin-top: 10px; }

.badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; line-height: 18px; white-space: nowrap; border: 1px solid transparent; }
.s-pending { background: #f1f5f9; color: #475569; border-color: #cbd5e1; }
.s-queued { background: #e0e7ff; color: #3730a3; }
.s-running { background: #dbeafe; color: #1d4ed8; }
.s-pausing { background: #fef3c7; color: #92400e; }
.s-paused { background: #ffedd5; color: #9a3412; }
.s-stopping { background: #ffe4e6; color: #9f1239; }
.s-stopped { background: #e5e7eb; color: #374151; }
.s-succeeded { background: #dcfce7; color: #166534; }
.s-failed { background: #fee2e2; color: #b91c1c; }
.s-skipped { background: #f3e8ff; color: #6b21a8; }
.b-planned, .b-running { background: #dbeafe; color: #1d4ed8; }
.b-paused { background: #ffedd5; color: #9a3412; }
.b-cancelled { background: #e5e7eb; color: #374151; }
.b-completed { background: #dcfce7; color: #166534; }
.b-awaiting { background: #fef3c7; color: #92400e; }
.b-approved { background: #dcfce7; color: #166534; }
.b-rejected { background: #fee2e2; color: #b91c1c; }
.b-expired { background: #e5e7eb; color: #374151; }
.arrow { color: var(--muted); margin: 0 6px; }

dialog { border: 0; border-radius: 12px; padding: 0; width: min(820px, 94vw); box-shadow: 0 20px 60px rgba(0,0,0,.3); color: var(--ink); }
dialog::backdrop { background: rgba(17, 24, 39, .45); }
dialog .dlg { padding: 20px 22px; max-height: 86vh; overflow: auto; }
dialog .buttons { display: flex; justify-content: flex-end; gap: 8px; margin-top: 16px; }
dialog .opts { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-end; margin-bottom: 4px; }
dialog label.check { display: inline-flex; gap: 6px; align-items: center; }
.impact .summary { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; }
.impact .stat { background: #f1f5f9; border-radius: 8px; padding: 6px 10px; }
.impact .stat b { font-size: 16px; margin-right: 4px; }
.impact .stat.changes { background: #e0f2fe; }
.impact .stat.bad { background: #fee2e2; }
.impact table.grid { font-size: 13px; }
.impact .scroll { max-height: 300px; overflow: auto; border-radius: 10px; }
.tag { display: inline-block; font-size: 11px; padding: 1px 6px; border-radius: 4px; background: #f1f5f9; color: #475569; margin-left: 6px; }
.tag.down { background: #e0f2fe; color: #075985; }
.error { color: var(--danger); }
.error:empty { display: none; }
.msg:empty { display: none; }

.bf-form { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; align-items: end; }
.bf-form .span2 { grid-column: span 2; }
.bf-form .actions { grid-column: 1 / -1; }
.bf-preview { margin-top: 14px; }
.policy td.on { font-weight: 700; }
table.grid tr.on td { background: #eef2ff; }
.slots { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
.slots span { background: #f1f5f9; border-radius: 6px; padding: 2px 8px; }
.bf-list { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; }
.bf-card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.bf-card header { display: flex; justify-content: space-between; align-items: center; gap: 10px; margin-bottom: 6px; }
.bf-card .task { font-weight: 700; font-size: 15px; }
.bf-card .range { color: var(--muted); font-size: 12.5px; margin-bottom: 10px; }
.progress { display: flex; align-items: center; gap: 10px; }
progress { flex: 1; height: 14px; appearance: none; -webkit-appearance: none; border: 0; border-radius: 999px; overflow: hidden; background: #e5e7eb; }
progress::-webkit-progress-bar { background: #e5e7eb; border-radius: 999px; }
progress::-webkit-progress-value { background: linear-gradient(90deg, #3b82f6, #22c55e); border-radius: 999px; transition: width .3s; }
progress::-moz-progress-bar { background: #3b82f6; }
.pct { font-variant-numeric: tabular-nums; min-width: 120px; text-align: right; font-size: 12.5px; }
.counts { display: flex; gap: 4px; flex-wrap: wrap; margin: 10px 0; min-height: 22px; }
.bf-card .buttons { display: flex; gap: 6px; align-items: center; }
.bf-card .buttons a { margin-left: auto; font-size: 13px; }

.detail { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr); gap: 16px; }
dl.kv { display: grid; grid-template-columns: 130px 1fr; gap: 6px 12px; margin: 0; }
dl.kv dt { color: var(--muted); font-size: 12.5px; }
dl.kv dd { margin: 0; word-break: break-all; }
pre.json { background: #0f172a; color: #e2e8f0; padding: 12px; border-radius: 8px; overflow: auto; max-height: 260px; margin: 0; white-space: pre-wrap; word-break: break-word; }
pre.text { background: #f8fafc; border: 1px solid var(--line); padding: 10px; border-radius: 8px; overflow: auto; max-height: 300px; margin: 8px 0 0; }
.diagram { overflow-x: auto; }
.diagram svg { display: block; width: 100%; min-width: 760px; height: auto; }
.diagram .node rect { fill: #fff; stroke: #94a3b8; stroke-width: 1.5; }
.diagram .node text { font-size: 13px; fill: #1f2937; text-anchor: middle; dominant-baseline: central; font-weight: 600; }
.diagram .node.terminal rect { stroke-width: 2.5; }
.diagram .node.current text { fill: #7c2d12; }
.diagram .pseudo { fill: #1f2937; }
.diagram .pseudo-end { fill: #fff; stroke: #1f2937; stroke-width: 2; }
.diagram .cluster { fill: #f8fafc; stroke: #cbd5e1; stroke-width: 1; stroke-dasharray: 5 4; }
.diagram .cluster-label { font-size: 11px; fill: #94a3b8; }
.diagram .edge { fill: none; stroke: #cbd5e1; stroke-width: 1.2; }
.diagram .edge.out { stroke: #e65100; stroke-width: 2.2; }
.diagram .edge.in { stroke: #475569; stroke-width: 1.6; stroke-dasharray: 5 3; }
.diagram .label { font-size: 11px; fill: #9a3412; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; text-anchor: middle; }
.diagram .legend { font-size: 11.5px; fill: #64748b; }
.bars { display: grid; grid-template-columns: 90px 1fr 70px; gap: 6px 10px; align-items: center; }
.bar { height: 12px; border-radius: 6px; background: #3b82f6; min-width: 2px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .v { font-size: 24px; font-weight: 700; }
.card .k { color: var(--muted); font-size: 12px; }
.toasts { position: fixed; right: 18px; bottom: 18px; display: flex; flex-direction: column; gap: 8px; z-index: 50; }
.toast { background: #111827; color: #f9fafb; padding: 10px 14px; border-radius: 8px; box-shadow: 0 6px 20px rgba(0,0,0,.25); max-width: 420px; }
.toast.bad { background: #7f1d1d; }
main.signin { display: flex; justify-content: center; padding-top: 12vh; }
main.signin form { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 28px; width: min(420px, 92vw); display: flex; flex-direction: column; gap: 14px; box-shadow: 0 8px 30px rgba(0,0,0,.06); }
main.signin .msg { color: var(--danger); margin: 0; }
@media (max-width: 900px) { .detail { grid-template-columns: 1fr; } nav a { padding: 0 6px; } }
`;
