function showTab(tab){document.querySelectorAll('section.panel').forEach(p=>{p.hidden=p.dataset.tab!==tab});
document.querySelectorAll('button.tab').forEach(b=>{const on=b.dataset.tab===tab;b.classList.toggle('active',on);
b.setAttribute('aria-selected',on?'true':'false')})}
document.querySelectorAll('button.tab').forEach(b=>b.addEventListener('click',()=>showTab(b.dataset.tab)));
