"""Numbers from stored runs: estimators and the metric registry (``metrics``), closed-form
intervals and the paired test (``intervals``), per-problem curves (``curves``), the report
(``report``) and accuracy under a clock (``budget/``). No matplotlib, rich or engine here."""
