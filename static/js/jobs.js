// Polls every active job box on the page and redraws its progress bar until the job is done or failed.
(function () {
  function draw(box, job) {
    var bar = box.querySelector('.progress-bar');
    box.dataset.jobStatus = job.status;
    box.querySelector('.job-state').textContent = job.status;
    box.querySelector('.job-message').textContent = job.message || '';
    bar.style.width = job.progress + '%';
    bar.setAttribute('aria-valuenow', job.progress);
    bar.textContent = job.progress + '%';
    if (job.status === 'done' || job.status === 'failed') {
      bar.classList.remove('progress-bar-striped', 'progress-bar-animated');
      bar.classList.add(job.status === 'done' ? 'bg-success' : 'bg-danger');
      var link = box.querySelector('.job-download');
      if (link && job.download) { link.href = job.download; link.classList.remove('d-none'); }
      if (job.status === 'failed' && !box.querySelector('.job-retry')) { window.location.reload(); }
    }
  }
  function poll(box) {
    if (box.dataset.jobStatus !== 'queued' && box.dataset.jobStatus !== 'running') { return; }
    fetch(box.dataset.statusUrl, {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) { if (job) { draw(box, job); } })
      .finally(function () { setTimeout(function () { poll(box); }, 700); });
  }
  document.querySelectorAll('.job-status').forEach(poll);
})();
