function applyFilters(){const kinds=new Set([...document.querySelectorAll('input.kind:checked')].map(i=>i.value));
const sides=new Set([...document.querySelectorAll('input.side:checked')].map(i=>i.value));
document.querySelectorAll('[data-kind]').forEach(c=>{c.style.display=
(kinds.has(c.dataset.kind)&&sides.has(c.dataset.side))?'':'none'})}
document.querySelectorAll('input.kind,input.side').forEach(i=>i.addEventListener('change',applyFilters));
