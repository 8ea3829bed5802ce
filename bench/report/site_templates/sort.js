function sortTable(th){const table=th.closest('table');const idx=[...th.parentNode.children].indexOf(th);
const asc=th.dataset.order!=='asc';th.parentNode.querySelectorAll('th').forEach(h=>delete h.dataset.order);
th.dataset.order=asc?'asc':'desc';const body=table.tBodies[0];const rows=[...body.rows];
const key=r=>{const c=r.cells[idx];if(c.dataset.value!==undefined)return parseFloat(c.dataset.value);
return c.dataset.text!==undefined?c.dataset.text:c.textContent.trim()};
rows.sort((a,b)=>{const x=key(a),y=key(b);if(typeof x==='number'&&typeof y==='number'){
const nx=isNaN(x)?-Infinity:x,ny=isNaN(y)?-Infinity:y;return asc?nx-ny:ny-nx}
return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x))});
rows.forEach(r=>body.appendChild(r))}
document.querySelectorAll('th.sortable').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
