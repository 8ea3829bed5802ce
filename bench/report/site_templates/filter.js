function applyFilters(){const kinds=new Set([...document.querySelectorAll('input.kind:checked')].map(i=>i.value));
const eps=new Set([...document.querySelectorAll('input.eps:checked')].map(i=>i.value));
document.querySelectorAll('[data-kind]').forEach(c=>{c.style.display=
(kinds.has(c.dataset.kind)&&eps.has(c.dataset.eps))?'':'none'})}
document.querySelectorAll('input.kind,input.eps').forEach(i=>i.addEventListener('change',applyFilters));
