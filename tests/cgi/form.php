#!/usr/bin/php-cgi
<?php
// tests/cgi/form.php — run by php-cgi (which refuses to run without REDIRECT_STATUS; spawnd sets it). Echoes the
// GET parameter "g" and the POST parameter "p".
header('Content-Type: text/plain; charset=utf-8');
echo 'get=' . ($_GET['g'] ?? '(none)') . "\n";
echo 'post=' . ($_POST['p'] ?? '(none)') . "\n";
echo 'method=' . $_SERVER['REQUEST_METHOD'] . "\n";
