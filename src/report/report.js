(function () {
  'use strict';
  document.documentElement.classList.add('js');
  // Copy buttons of remediation commands: the Clipboard API where the page may use it, else a
  // selection and execCommand('copy'); both work from a file with no network.
  document.addEventListener('click', function (event) {
    var button = event.target;
    if (!button || !button.classList || !button.classList.contains('copy')) { return; }
    var code = button.parentNode.querySelector('code');
    if (!code) { return; }
    var text = code.textContent;
    function done(ok) {
      button.textContent = ok ? 'Copied' : 'Select and copy';
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    }
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(code);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  });
  var form = document.getElementById('filters');
  if (!form) { return; }
  var subjects = Array.prototype.slice.call(document.querySelectorAll('details.subject'));
  var status = document.getElementById('filter-status');
  function apply() {
    var sevs = {};
    var allSevs = true;
    Array.prototype.forEach.call(form.querySelectorAll('input[name="severity"]'), function (box) {
      if (box.checked) { sevs[box.value] = true; } else { allSevs = false; }
    });
    var rule = form.elements.rule.value;
    var kind = form.elements.kind.value;
    var text = form.elements.text.value.trim().toLowerCase();
    var showSuppressed = form.elements.suppressed.checked;
    var findingFilter = !allSevs || rule !== '' || !showSuppressed;
    var shown = {}; var total = {};
    subjects.forEach(function (subject) {
      var visibleFindings = 0;
      Array.prototype.forEach.call(subject.querySelectorAll('.finding'), function (f) {
        var ok = sevs[f.getAttribute('data-severity')] === true &&
          (rule === '' || f.getAttribute('data-rule') === rule) &&
          (showSuppressed || f.getAttribute('data-suppressed') !== 'true');
        f.hidden = !ok;
        if (ok) { visibleFindings += 1; }
      });
      var ok = (kind === '' || subject.getAttribute('data-kind') === kind) &&
        (text === '' || (subject.getAttribute('data-search') || '').indexOf(text) !== -1) &&
        (!findingFilter || visibleFindings > 0);
      subject.hidden = !ok;
      var list = subject.closest('section');
      var key = list ? list.id : '';
      total[key] = (total[key] || 0) + 1;
      if (ok) { shown[key] = (shown[key] || 0) + 1; }
    });
    var parts = [];
    Object.keys(total).forEach(function (key) {
      var n = shown[key] || 0;
      var empty = document.querySelector('[data-empty-for="' + key + '"]');
      if (empty) { empty.hidden = n !== 0; }
      var label = key === 'identities' ? 'identities' : 'service principals';
      parts.push('Showing ' + n + ' of ' + total[key] + ' ' + label);
    });
    if (status) { status.textContent = parts.join(' \u00b7 '); }
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  form.addEventListener('reset', function () { window.setTimeout(apply, 0); });
  function setAll(open) {
    subjects.forEach(function (s) { if (!s.hidden) { s.open = open; } });
  }
  var expand = document.getElementById('expand-all');
  var collapse = document.getElementById('collapse-all');
  if (expand) { expand.addEventListener('click', function () { setAll(true); }); }
  if (collapse) { collapse.addEventListener('click', function () { setAll(false); }); }
  function openTarget() {
    var id = window.location.hash.slice(1);
    if (!id) { return; }
    var target = document.getElementById(id);
    if (target && target.tagName === 'DETAILS') { target.hidden = false; target.open = true; target.scrollIntoView(); }
  }
  window.addEventListener('hashchange', openTarget);
  apply();
  openTarget();
})();
