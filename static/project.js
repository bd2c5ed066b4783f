// Project page: upload a file to the import API, and follow pre-labeling jobs while they run.
(function () {
  'use strict';
  const root = document.getElementById('project');
  if (!root) return;
  const projectId = root.dataset.project;
  const csrf = root.dataset.csrf;

  const form = document.getElementById('import-form');
  const report = document.getElementById('import-report');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const file = document.getElementById('import-file').files[0];
    if (!file) return;
    const csv = /\.csv$/i.test(file.name);
    report.hidden = false;
    report.textContent = 'Uploading ' + file.name + '…';
    try {
      // The file goes as the request body, so the server can import it as it streams in.
      const res = await fetch('/api/v1/projects/' + projectId + '/items?format=' + (csv ? 'csv' : 'jsonl'), {
        method: 'POST',
        headers: { 'Content-Type': csv ? 'text/csv' : 'application/x-ndjson', 'X-CSRF-Token': csrf },
        body: file,
      });
      const body = await res.json();
      if (!res.ok) {
        report.textContent = 'Import failed: ' + (body.error ? body.error.message : res.status);
        return;
      }
      const lines = [
        'Imported ' + body.inserted + ' items (' + body.duplicates + ' already there, ' +
          body.annotations + ' with labels), ' + body.error_count + ' bad rows.',
      ];
      for (const e of body.errors) lines.push('line ' + e.line + ': ' + e.message);
      report.textContent = lines.join('\n');
      report.dataset.inserted = body.inserted;
    } catch (e) {
      report.textContent = 'Import failed: ' + e;
    }
  });

  // Poll active jobs once a second; reload when one ends so counts and the queue are fresh.
  const active = () => Array.from(document.querySelectorAll('.job')).filter(
    (j) => j.dataset.status === 'queued' || j.dataset.status === 'running');
  async function poll() {
    const jobs = active();
    if (jobs.length === 0) return;
    for (const el of jobs) {
      try {
        const res = await fetch('/api/v1/jobs/' + el.dataset.job, { headers: { Accept: 'application/json' } });
        if (!res.ok) continue;
        const job = await res.json();
        el.querySelector('progress').max = Math.max(job.total, 1);
        el.querySelector('progress').value = job.done;
        el.querySelector('.job-progress').textContent = job.done + ' / ' + job.total;
        el.querySelector('.job-status').textContent = job.status;
        const rate = el.querySelector('.job-rate');
        rate.textContent = job.items_per_sec
          ? job.items_per_sec.toFixed(1) + ' items/s · ETA ' + Math.ceil(job.eta_seconds) + ' s'
          : '';
        if (job.status !== el.dataset.status && !(job.status === 'running' && el.dataset.status === 'queued')) {
          window.location.reload();
          return;
        }
        el.dataset.status = job.status;
      } catch (e) {
        /* the next poll tries again */
      }
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
