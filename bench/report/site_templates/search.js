function applySearch(){const terms=document.getElementById('search').value.toLowerCase().split(/\s+/).filter(t=>t);
document.querySelectorAll('tr[data-search]').forEach(r=>{r.style.display=
terms.every(t=>r.dataset.search.includes(t))?'':'none'})}
document.getElementById('search').addEventListener('input',applySearch);
