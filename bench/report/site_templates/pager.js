const records=JSON.parse(document.getElementById('records').textContent);
const fields=JSON.parse(document.getElementById('fields').textContent);let page=0;const size=50;
// class indices shown by name (bench.report.site_classes); null: the task's names are not here
const classes=JSON.parse(document.getElementById('classes').textContent);
const named=(f,v)=>classes!==null&&classes.fields.includes(f)&&Number.isInteger(v)&&v>=0&&v<classes.names.length;
function show(){const body=document.querySelector('#samples tbody');body.innerHTML='';
for(const r of records.slice(page*size,(page+1)*size)){const tr=document.createElement('tr');
for(const f of fields){const td=document.createElement('td');const v=r[f];
td.textContent=(v===undefined||v===null)?'':(typeof v==='number'?(Number.isInteger(v)?v:v.toFixed(4)):String(v));
if(named(f,v)){td.textContent=classes.names[v];td.title=`class ${v}`;td.className='class'}
if(typeof v==='string'&&v.length>12)td.className='text';if(f==='id')td.className='name';tr.appendChild(td)}
body.appendChild(tr)}document.getElementById('page').textContent=
`samples ${page*size+1}-${Math.min((page+1)*size,records.length)} of ${records.length}`}
document.getElementById('prev').onclick=()=>{if(page>0){page--;show()}};
document.getElementById('next').onclick=()=>{if((page+1)*size<records.length){page++;show()}};show();
